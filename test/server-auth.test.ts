import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_PAYLOAD_BYTES } from "../schemas/index.ts";
import { ADMIN_TOKEN, deploy, RUNNER_TOKEN, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
const runCount = async () => Number((await f.database.db("runs").count<{ count: string }[]>("* as count"))[0].count);

beforeAll(async () => {
  f = await startServerFixture();
  await deploy(f, ["hello"]);
});
afterAll(async () => {
  await f?.close();
});

describe("auth", () => {
  it("refuses a missing or wrong key with 401", async () => {
    const missing = await f.call("POST", "/api/v1/tasks/hello/trigger", { key: null, body: { payload: 1 } });
    expect(missing.status).toBe(401);
    expect(missing.body.error.message).toMatch(/missing API key/);
    const wrong = await f.call("POST", "/api/v1/tasks/hello/trigger", { key: "sk_production_nope", body: { payload: 1 } });
    expect(wrong.status).toBe(401);
    expect(await runCount()).toBe(0);
  });

  it("refuses a key of another environment with 403", async () => {
    const run = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: 1 } });
    const other = await f.call("GET", `/api/v1/runs/${run.body.id}`, { key: f.keys.staging });
    expect(other.status).toBe(403);
    expect(other.body.error.message).toMatch(/another environment/);
    await f.database.db("runs").del();
  });

  it("runner routes need the runner token, admin routes the admin token", async () => {
    const withKey = await f.call("POST", "/api/v1/runner/register", { body: { name: "x", capacity: 1, checkpoints: false } });
    expect(withKey.status).toBe(403);
    expect(withKey.body.error.message).toMatch(/runner token/);
    const withAdmin = await f.call("POST", "/api/v1/admin/projects", { key: RUNNER_TOKEN, body: { slug: "p2" } });
    expect(withAdmin.status).toBe(403);
    const ok = await f.call("POST", "/api/v1/admin/projects", { key: ADMIN_TOKEN, body: { slug: "p2" } });
    expect(ok.status).toBe(200);
    expect(ok.body.environments.map((e: { environment: string }) => e.environment).sort()).toEqual(["development", "production", "staging"]);
    const again = await f.call("POST", "/api/v1/admin/projects", { key: ADMIN_TOKEN, body: { slug: "p2" } });
    expect(again.body).toMatchObject({ created: false, environments: [] });
    const who = await f.call("GET", "/api/v1/whoami", { key: ok.body.environments[0].apiKey });
    expect(who.body.project).toBe("p2");
  });

  it("preview environments: create, archive refuses new triggers, rotate keys", async () => {
    const created = await f.call("POST", "/api/v1/admin/projects/demo/environments", { key: ADMIN_TOKEN, body: { slug: "preview/pr-3" } });
    expect(created.status).toBe(200);
    const key = created.body.apiKey;
    await deploy(f, ["hello"], { key });
    const before = await f.call("POST", "/api/v1/tasks/hello/trigger", { key, body: { payload: 1 } });
    expect(before.status).toBe(200);
    const archived = await f.call("POST", `/api/v1/admin/projects/demo/environments/${encodeURIComponent("preview/pr-3")}/archive`, { key: ADMIN_TOKEN });
    expect(archived.status).toBe(200);
    const after = await f.call("POST", "/api/v1/tasks/hello/trigger", { key, body: { payload: 1 } });
    expect(after.status).toBe(409);
    expect(after.body.error.message).toBe("environment preview/pr-3 is archived");
    const rotated = await f.call("POST", `/api/v1/admin/projects/demo/environments/staging/keys`, { key: ADMIN_TOKEN, body: { revokeOthers: true } });
    expect(rotated.status).toBe(200);
    expect((await f.call("GET", "/api/v1/whoami", { key: f.keys.staging })).status).toBe(401);
    expect((await f.call("GET", "/api/v1/whoami", { key: rotated.body.apiKey })).body.environment).toBe("staging");
    await f.database.db("run_attempts").del();
    await f.database.db("runs").del();
  });
});

describe("bad input: a 4xx naming the problem, and no row written", () => {
  it("unknown task", async () => {
    const res = await f.call("POST", "/api/v1/tasks/nope/trigger", { body: { payload: 1 } });
    expect(res.status).toBe(404);
    expect(res.body.error.message).toContain("nope");
  });
  it("non-JSON payload", async () => {
    const res = await f.server.app.inject({ method: "POST", url: "/api/v1/tasks/hello/trigger", headers: { authorization: `Bearer ${f.keys.production}`, "content-type": "application/json" }, payload: "{payload: nope" });
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).error.message).toMatch(/JSON/i);
    const text = await f.server.app.inject({ method: "POST", url: "/api/v1/tasks/hello/trigger", headers: { authorization: `Bearer ${f.keys.production}`, "content-type": "text/plain" }, payload: "hello" });
    expect(text.statusCode).toBe(400);
    expect(JSON.parse(text.body).error.message).toMatch(/body/);
  });
  it("oversized payload", async () => {
    const res = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: "x".repeat(MAX_PAYLOAD_BYTES) } });
    expect(res.status).toBe(413);
    expect(res.body.error.message).toContain(String(MAX_PAYLOAD_BYTES));
    const huge = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: "x".repeat(MAX_PAYLOAD_BYTES * 2) } });
    expect(huge.status).toBe(413);
    expect(huge.body.error.message).toContain("3 MiB");
  });
  it("bad or unknown version", async () => {
    const bad = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: 1, options: { version: "v1" } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe("options.version");
    const missing = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: 1, options: { version: "20000101.9" } } });
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toContain("20000101.9");
  });
  it("bad delay and unknown options", async () => {
    const bad = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: 1, options: { delay: "soon" } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("delay");
    const extra = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: 1, options: { priority: 1 } } });
    expect(extra.status).toBe(400);
    expect(extra.body.error.message).toMatch(/priority|options/);
  });
  it("left no rows behind", async () => {
    expect(await runCount()).toBe(0);
  });
});
