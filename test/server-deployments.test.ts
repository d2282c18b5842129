import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeploymentWithNextVersion } from "../server/index.ts";
import { DIGEST, deploy, eventually, manifest, poll, registerRunner, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
beforeAll(async () => {
  f = await startServerFixture({ deploymentHeartbeatTimeoutMs: 300 });
});
afterAll(async () => {
  await f?.close();
});

const today = () => {
  const d = new Date();
  return `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, "0")}${String(d.getUTCDate()).padStart(2, "0")}`;
};

describe("deploy store", () => {
  it("PENDING_VERSION runs become QUEUED when a deployment with their task is promoted", async () => {
    const trig = await f.call("POST", "/api/v1/tasks/email/trigger", { key: f.keys.staging, body: { payload: 1 } });
    expect(trig.status).toBe(200);
    expect((await f.call("GET", `/api/v1/runs/${trig.body.id}`, { key: f.keys.staging })).body.status).toBe("PENDING_VERSION");
    await deploy(f, ["other"], { key: f.keys.staging });
    // The environment now has deployments, none with `nope`: unknown.
    expect((await f.call("POST", "/api/v1/tasks/nope/trigger", { key: f.keys.staging, body: { payload: 1 } })).status).toBe(404);
    expect((await f.call("GET", `/api/v1/runs/${trig.body.id}`, { key: f.keys.staging })).body.status).toBe("PENDING_VERSION");
    await deploy(f, ["other", "email"], { key: f.keys.staging });
    expect((await f.call("GET", `/api/v1/runs/${trig.body.id}`, { key: f.keys.staging })).body.status).toBe("QUEUED");
  });

  it("parallel deploys get distinct consecutive versions", async () => {
    const results = await Promise.all(Array.from({ length: 8 }, () => deploy(f, ["a"], { key: f.keys.development, promote: false })));
    const ns = results.map((r) => Number(r.version.split(".")[1])).sort((a, b) => a - b);
    expect(ns).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(results.every((r) => r.version.startsWith(today()))).toBe(true);
  });

  it("the allocator is one function with the database handed in; dates come from the clock", async () => {
    const env = await f.database.db("environments").where({ slug: "development" }).first("id");
    const row = await createDeploymentWithNextVersion(f.database.db, { environmentId: env.id, status: "BUILDING", values: {}, now: () => new Date("2030-02-03T23:59:00Z") });
    expect(row.version).toBe("20300203.1");
  });

  it("a DEPLOYED row cannot change, even in SQL", async () => {
    const d = await deploy(f, ["a"], { key: f.keys.development, promote: false });
    await expect(f.database.db("deployments").where({ id: d.id }).update({ image_digest: `sha256:${"b".repeat(64)}` })).rejects.toThrow(/never change/);
    await expect(f.database.db("deployments").where({ id: d.id }).update({ manifest: JSON.stringify(manifest(["zzz"])) })).rejects.toThrow(/never change/);
    await expect(f.database.db("deployments").where({ id: d.id }).del()).rejects.toThrow(/cannot be deleted/);
  });

  it("promote and rollback move the pointer without a rebuild", async () => {
    const key = f.keys.production;
    const v1 = await deploy(f, ["hello"], { key });
    const v2 = await deploy(f, ["hello"], { key });
    const v3 = await deploy(f, ["hello"], { key, promote: false });
    expect(v3.promoted).toBe(false);
    const rolled = await f.call("POST", "/api/v1/deployments/rollback", { key });
    expect(rolled.body).toMatchObject({ version: v1.version, promoted: true });
    const promoted = await f.call("POST", `/api/v1/deployments/${v3.version}/promote`, { key });
    expect(promoted.body.promoted).toBe(true);
    const list = await f.call("GET", "/api/v1/deployments", { key });
    expect(list.body.data.map((d: { version: string }) => d.version)).toEqual([v3.version, v2.version, v1.version]);
    const back = await f.call("POST", "/api/v1/deployments/rollback", { key });
    expect(back.body.version).toBe(v2.version);
    const got = await f.call("GET", `/api/v1/deployments/${v2.version}`, { key });
    expect(got.body).toMatchObject({ imageDigest: DIGEST, tasks: ["hello"], promoted: true, status: "DEPLOYED" });
    // Runs lock to the promoted deployment when claimed; a pinned version wins.
    const runnerId = await registerRunner(f, "pin");
    const pinned = await f.call("POST", "/api/v1/tasks/hello/trigger", { key, body: { payload: 1, options: { version: v1.version } } });
    const free = await f.call("POST", "/api/v1/tasks/hello/trigger", { key, body: { payload: 2 } });
    const claimed = await eventually(() => poll(f, runnerId, { freeSlots: 5, waitMs: 500 }), (p) => p.runs.length >= 2);
    const versionOf = (id: string) => claimed.runs.find((r) => r.runId === id)?.deployment.version;
    expect(versionOf(pinned.body.id)).toBe(v1.version);
    expect(versionOf(free.body.id)).toBe(v2.version);
  });

  it("two-phase deploys: start → heartbeat → finish, fail, and a silent build times out", async () => {
    const key = f.keys.development;
    const started = await f.call("POST", "/api/v1/deployments/start", { key, body: {} });
    expect(started.body.status).toBe("BUILDING");
    expect((await f.call("POST", `/api/v1/deployments/${started.body.id}/heartbeat`, { key })).status).toBe(200);
    const finished = await f.call("POST", `/api/v1/deployments/${started.body.id}/finish`, { key, body: { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(["a"]), promote: false } });
    expect(finished.body).toMatchObject({ status: "DEPLOYED", version: started.body.version });
    const again = await f.call("POST", `/api/v1/deployments/${started.body.id}/fail`, { key, body: { reason: "x" } });
    expect(again.status).toBe(409);
    const other = await f.call("POST", "/api/v1/deployments/start", { key, body: {} });
    const failed = await f.call("POST", `/api/v1/deployments/${other.body.id}/fail`, { key, body: { reason: "esbuild: syntax error" } });
    expect(failed.body).toMatchObject({ status: "FAILED", failureReason: "esbuild: syntax error" });
    const silent = await f.call("POST", "/api/v1/deployments/start", { key, body: {} });
    await eventually(() => f.call("GET", `/api/v1/deployments/${silent.body.version}`, { key }), (r) => r.body.status === "TIMED_OUT", 5000);
  });

  it("rejects a manifest of another project and a bad digest, naming the field", async () => {
    const wrong = await f.call("POST", "/api/v1/deployments", { body: { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(["a"], "elsewhere") } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.field).toBe("manifest.project");
    const digest = await f.call("POST", "/api/v1/deployments", { body: { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: "md5:1", manifest: manifest(["a"]) } });
    expect(digest.status).toBe(400);
    expect(digest.body.error.field).toBe("imageDigest");
  });
});
