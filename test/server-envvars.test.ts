// Environment variables through the HTTP API, against a real server and PostgreSQL (app.inject).
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyring, createServer, ensureProject, EncryptionKeyError, parseMasterKey, type Keyring, type StasisServer } from "../server/index.ts";
import { createTestDatabase, type TestDatabase } from "./support/db.ts";
import { ADMIN_TOKEN, FAKE_SEAL, manifest, DIGEST, RUNNER_TOKEN } from "./support/server-fixture.ts";

const KEY_A = randomBytes(32).toString("base64");
const KEY_B = randomBytes(32).toString("hex");
const SECRET = `s3cr3t-${randomBytes(8).toString("hex")}`;

let database: TestDatabase;
let server: StasisServer;
let keys: Record<string, string>;

const keyring = (current: string, previous?: string): Keyring => createKeyring(parseMasterKey(current), previous ? parseMasterKey(previous) : null);
const start = (ring: Keyring | null) => createServer({ db: database.db, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, logger: false, keyring: ring });

async function call(method: string, url: string, key: string | null, body?: unknown): Promise<{ status: number; body: any }> {
  const response = await server.app.inject({ method: method as "GET", url, headers: key ? { authorization: `Bearer ${key}` } : {}, ...(body !== undefined ? { payload: body as object } : {}) });
  return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : null };
}
const admin = (env: string) => `/api/v1/admin/projects/demo/environments/${encodeURIComponent(env)}/envvars`;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await start(keyring(KEY_A));
  const project = await ensureProject(database.db, { slug: "demo" });
  keys = Object.fromEntries(project.keys.map((k) => [k.environment, k.apiKey]));
  const preview = await call("POST", "/api/v1/admin/projects/demo/environments", ADMIN_TOKEN, { slug: "preview/pr-7" });
  keys["preview/pr-7"] = preview.body.apiKey;
  keys["preview/pr-8"] = (await call("POST", "/api/v1/admin/projects/demo/environments", ADMIN_TOKEN, { slug: "preview/pr-8" })).body.apiKey;
});
afterAll(async () => {
  await server?.close();
  await database?.drop();
});

describe("environment variables", () => {
  it("sets, lists (hidden unless reveal=true), gets and deletes the key's own environment's variables", async () => {
    const set = await call("POST", "/api/v1/envvars", keys.production, { variables: { API_TOKEN: SECRET, REGION: "eu-west-1" } });
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ project: "demo", environment: "production", set: ["API_TOKEN", "REGION"] });
    const hidden = await call("GET", "/api/v1/envvars", keys.production);
    expect(hidden.body.data.map((v: { name: string }) => v.name)).toEqual(["API_TOKEN", "REGION"]);
    expect(JSON.stringify(hidden.body)).not.toContain(SECRET);
    const shown = await call("GET", "/api/v1/envvars?reveal=true", keys.production);
    expect(shown.body.data.find((v: { name: string }) => v.name === "API_TOKEN").value).toBe(SECRET);
    expect((await call("GET", "/api/v1/envvars/REGION", keys.production)).body.value).toBe("eu-west-1");
    expect((await call("PUT", "/api/v1/envvars/REGION", keys.production, { value: "us-east-1" })).status).toBe(200);
    expect((await call("GET", "/api/v1/envvars/REGION", keys.production)).body.value).toBe("us-east-1");
    expect((await call("DELETE", "/api/v1/envvars/REGION", keys.production)).body.deleted).toBe(true);
    expect((await call("GET", "/api/v1/envvars/REGION", keys.production)).status).toBe(404);
  });

  it("keeps environments apart: a key sees and writes only its own environment; other environments need the admin token", async () => {
    const staging = await call("GET", "/api/v1/envvars?reveal=true", keys.staging);
    expect(staging.status).toBe(200);
    expect(staging.body.environment).toBe("staging");
    expect(staging.body.data).toEqual([]);
    // An environment key on the admin routes (another environment, or its own) is refused.
    const cross = await call("GET", `${admin("production")}?reveal=true`, keys.staging);
    expect(cross.status).toBe(403);
    expect(JSON.stringify(cross.body)).not.toContain(SECRET);
    expect((await call("POST", admin("production"), keys.staging, { variables: { API_TOKEN: "overwritten" } })).status).toBe(403);
    expect((await call("POST", admin("preview"), keys["preview/pr-7"], { variables: { SHARED: "from-a-preview" } })).status).toBe(403);
    expect((await call("GET", "/api/v1/envvars/API_TOKEN", keys.production)).body.value).toBe(SECRET);
    // The admin token reaches any environment.
    const viaAdmin = await call("GET", `${admin("production")}?reveal=true`, ADMIN_TOKEN);
    expect(viaAdmin.body.data.find((v: { name: string }) => v.name === "API_TOKEN").value).toBe(SECRET);
    expect((await call("GET", admin("preview/pr-404"), ADMIN_TOKEN)).status).toBe(404);
  });

  it("preview environments inherit the preview set and override it per branch", async () => {
    expect((await call("POST", admin("preview"), ADMIN_TOKEN, { variables: { DATABASE_HOST: "preview-db.internal", FEATURE: "on" } })).status).toBe(200);
    expect((await call("POST", "/api/v1/envvars", keys["preview/pr-7"], { variables: { DATABASE_HOST: "pr7-db.internal" } })).status).toBe(200);
    const pr7 = await call("GET", "/api/v1/envvars?reveal=true", keys["preview/pr-7"]);
    expect(pr7.body.data).toEqual([
      expect.objectContaining({ name: "DATABASE_HOST", value: "pr7-db.internal", source: "preview/pr-7" }),
      expect.objectContaining({ name: "FEATURE", value: "on", source: "preview" }),
    ]);
    const pr8 = await call("GET", "/api/v1/envvars?reveal=true", keys["preview/pr-8"]);
    expect(pr8.body.data).toEqual([
      expect.objectContaining({ name: "DATABASE_HOST", value: "preview-db.internal", source: "preview" }),
      expect.objectContaining({ name: "FEATURE", value: "on", source: "preview" }),
    ]);
    // Unsetting the override brings the inherited value back.
    await call("DELETE", "/api/v1/envvars/DATABASE_HOST", keys["preview/pr-7"]);
    expect((await call("GET", "/api/v1/envvars/DATABASE_HOST", keys["preview/pr-7"])).body).toMatchObject({ value: "preview-db.internal", source: "preview" });
    // Production does not see the preview set.
    expect((await call("GET", "/api/v1/envvars/FEATURE", keys.production)).status).toBe(404);
  });

  it("refuses bad names, reserved names and oversized values, naming the rule, and a failing set keeps every old value", async () => {
    const bad = await call("POST", "/api/v1/envvars", keys.production, { variables: { API_TOKEN: "new-value", "1BAD": "x" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/\^\[A-Za-z_\]\[A-Za-z0-9_\]\*\$/);
    const reserved = await call("PUT", "/api/v1/envvars/STASIS_API_KEY", keys.production, { value: "x" });
    expect(reserved.status).toBe(400);
    expect(reserved.body.error.message).toMatch(/reserved/);
    const big = await call("POST", "/api/v1/envvars", keys.production, { variables: { API_TOKEN: "new-value", BIG: "x".repeat(64 * 1024 + 1) } });
    expect(big.status).toBe(400);
    expect(big.body.error.message).toMatch(/64 KiB/);
    expect((await call("GET", "/api/v1/envvars/API_TOKEN", keys.production)).body.value).toBe(SECRET);
    // A failure inside the transaction (the database refuses the second row) rolls back the first.
    await database.db.raw(`CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.name = 'BOOM' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$`);
    await database.db.raw(`CREATE TRIGGER refuse_boom BEFORE INSERT OR UPDATE ON environment_variables FOR EACH ROW EXECUTE FUNCTION refuse_boom()`);
    try {
      const failed = await call("POST", "/api/v1/envvars", keys.production, { variables: { API_TOKEN: "half-written", BOOM: "x" } });
      expect(failed.status).toBe(500);
    } finally {
      await database.db.raw(`DROP TRIGGER refuse_boom ON environment_variables; DROP FUNCTION refuse_boom()`);
    }
    expect((await call("GET", "/api/v1/envvars/API_TOKEN", keys.production)).body.value).toBe(SECRET);
  });

  it("imports a whole set, replacing what is not in it when asked", async () => {
    const imported = await call("POST", "/api/v1/envvars/import", keys.staging, { variables: { A_ONE: "1", B_TWO: "2" } });
    expect(imported.body).toMatchObject({ set: ["A_ONE", "B_TWO"], deleted: [] });
    const replaced = await call("POST", "/api/v1/envvars/import", keys.staging, { variables: { B_TWO: "two" }, replace: true });
    expect(replaced.body).toMatchObject({ set: ["B_TWO"], deleted: ["A_ONE"] });
    expect((await call("GET", "/api/v1/envvars?reveal=true", keys.staging)).body.data.map((v: { name: string; value: string }) => [v.name, v.value])).toEqual([["B_TWO", "two"]]);
  });

  it("hands a claimed run exactly its environment's variables and redacts their values from stored logs", async () => {
    const deploy = await call("POST", "/api/v1/deployments", keys["preview/pr-8"], { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(["hello"]), promote: true });
    expect(deploy.status).toBe(200);
    await call("POST", "/api/v1/envvars", keys["preview/pr-8"], { variables: { FEATURE: "off-for-pr8" } });
    const run = await call("POST", "/api/v1/tasks/hello/trigger", keys["preview/pr-8"], { payload: 1 });
    const runnerId = (await call("POST", "/api/v1/runner/register", RUNNER_TOKEN, { name: "r", capacity: 1, checkpoints: false })).body.runnerId;
    const polled = await call("POST", "/api/v1/runner/poll", RUNNER_TOKEN, { runnerId, freeSlots: 1, waitMs: 0 });
    const claim = polled.body.runs[0];
    expect(claim.runId).toBe(run.body.id);
    expect(claim.env).toEqual({ DATABASE_HOST: "preview-db.internal", FEATURE: "off-for-pr8" });
    const logged = await call("POST", `/api/v1/runner/runs/${claim.runId}/logs`, RUNNER_TOKEN, {
      leaseId: claim.leaseId,
      lines: [{ ts: new Date().toISOString(), level: "info", message: "connecting to preview-db.internal now", data: { host: "preview-db.internal", short: "on" } }],
    });
    expect(logged.status).toBe(200);
    const logs = await call("GET", `/api/v1/runs/${claim.runId}/logs`, keys["preview/pr-8"]);
    expect(logs.body.data[0].message).toBe("connecting to [redacted:DATABASE_HOST] now");
    expect(logs.body.data[0].data).toEqual({ host: "[redacted:DATABASE_HOST]", short: "on" });
  });

  it("a resumed run gets the variables its process was started with; a new attempt gets the current ones; both are redacted server-side", async () => {
    const key = keys["preview/pr-8"];
    const runnerCall = (path: string, body: unknown) => call("POST", `/api/v1/runner/runs/${path}`, RUNNER_TOKEN, body);
    const { body: run } = await call("POST", "/api/v1/tasks/hello/trigger", key, { payload: 2 });
    const runnerId = (await call("POST", "/api/v1/runner/register", RUNNER_TOKEN, { name: "r-resume", capacity: 1, checkpoints: true })).body.runnerId;
    const first = (await call("POST", "/api/v1/runner/poll", RUNNER_TOKEN, { runnerId, freeSlots: 1, waitMs: 0 })).body.runs[0];
    expect(first.runId).toBe(run.id);
    expect(first.env.FEATURE).toBe("off-for-pr8");
    const wait = await runnerCall(`${run.id}/waits`, { leaseId: first.leaseId, spec: { kind: "event", event: "resume-me" } });
    await runnerCall(`${run.id}/suspend`, { leaseId: first.leaseId, waitpointId: wait.body.waitpointId, checkpoint: { location: "/ckpt/envvars", sizeBytes: 1, ...FAKE_SEAL } });
    await call("POST", "/api/v1/envvars", key, { variables: { FEATURE: "changed-while-frozen" } });
    await call("POST", "/api/v1/events", key, { event: "resume-me", payload: null });
    const resumed = (await call("POST", "/api/v1/runner/poll", RUNNER_TOKEN, { runnerId, freeSlots: 1, waitMs: 0 })).body.runs[0];
    expect(resumed.resume.checkpointLocation).toBe("/ckpt/envvars");
    expect(resumed.env.FEATURE).toBe("off-for-pr8");
    // A line with the old and the new value, shipped unredacted: the server redacts both.
    await runnerCall(`${run.id}/logs`, { leaseId: resumed.leaseId, lines: [{ ts: new Date().toISOString(), level: "info", message: "old off-for-pr8 new changed-while-frozen" }] });
    const logs = await call("GET", `/api/v1/runs/${run.id}/logs`, key);
    expect(logs.body.data.at(-1).message).toBe("old [redacted:FEATURE] new [redacted:FEATURE]");
    // The attempt fails and is retried: the new process gets the current value.
    await runnerCall(`${run.id}/complete`, { leaseId: resumed.leaseId, result: { ok: false, error: { name: "Error", message: "try again" } } });
    await database.db("runs").where({ id: run.id }).update({ available_at: new Date(0) });
    const retried = (await call("POST", "/api/v1/runner/poll", RUNNER_TOKEN, { runnerId, freeSlots: 1, waitMs: 0 })).body.runs[0];
    expect(retried).toMatchObject({ runId: run.id, attempt: 2, resume: null });
    expect(retried.env.FEATURE).toBe("changed-while-frozen");
    await call("POST", "/api/v1/envvars", key, { variables: { FEATURE: "off-for-pr8" } });
  });

  it("keeps the variables a run's process got only while the run can still start or restore a process: gone once it is final, also when canceled while frozen", async () => {
    const key = keys["preview/pr-8"];
    const runnerCall = (path: string, body: unknown) => call("POST", `/api/v1/runner/runs/${path}`, RUNNER_TOKEN, body);
    const kept = async (runId: string) => Number((await database.db("run_variables").where({ run_id: runId }).count<[{ count: string }]>("* as count"))[0].count);
    const runnerId = (await call("POST", "/api/v1/runner/register", RUNNER_TOKEN, { name: "r-forget", capacity: 2, checkpoints: true })).body.runnerId;

    // Completed.
    const { body: done } = await call("POST", "/api/v1/tasks/hello/trigger", key, { payload: "done" });
    const claim = (await call("POST", "/api/v1/runner/poll", RUNNER_TOKEN, { runnerId, freeSlots: 1, waitMs: 0 })).body.runs[0];
    expect(claim.runId).toBe(done.id);
    expect(Object.keys(claim.env).length).toBeGreaterThan(0);
    expect(await kept(done.id)).toBe(1);
    await runnerCall(`${done.id}/complete`, { leaseId: claim.leaseId, result: { ok: true, output: 1 } });
    expect((await call("GET", `/api/v1/runs/${done.id}`, key)).body.status).toBe("COMPLETED");
    expect(await kept(done.id)).toBe(0);

    // Completed together, in one batched report (one statement ends both).
    const pair = [(await call("POST", "/api/v1/tasks/hello/trigger", key, { payload: "a" })).body.id, (await call("POST", "/api/v1/tasks/hello/trigger", key, { payload: "b" })).body.id];
    const claims = (await call("POST", "/api/v1/runner/poll", RUNNER_TOKEN, { runnerId, freeSlots: 2, waitMs: 0 })).body.runs as Array<{ runId: string; leaseId: string }>;
    expect(claims.map((c) => c.runId).sort()).toEqual([...pair].sort());
    for (const id of pair) expect(await kept(id)).toBe(1);
    const ends = await call("POST", "/api/v1/runner/complete", RUNNER_TOKEN, { items: claims.map((c) => ({ runId: c.runId, leaseId: c.leaseId, result: { ok: true, output: null } })) });
    expect(ends.body.results.map((r: { ok: boolean }) => r.ok)).toEqual([true, true]);
    for (const id of pair) expect(await kept(id)).toBe(0);

    // Frozen (the snapshot is what its restore would get), then canceled.
    const { body: frozen } = await call("POST", "/api/v1/tasks/hello/trigger", key, { payload: "frozen" });
    const first = (await call("POST", "/api/v1/runner/poll", RUNNER_TOKEN, { runnerId, freeSlots: 1, waitMs: 0 })).body.runs[0];
    const wait = await runnerCall(`${frozen.id}/waits`, { leaseId: first.leaseId, spec: { kind: "event", event: "never-sent" } });
    await runnerCall(`${frozen.id}/suspend`, { leaseId: first.leaseId, waitpointId: wait.body.waitpointId, checkpoint: { location: "/ckpt/forget", sizeBytes: 1, ...FAKE_SEAL } });
    expect(await kept(frozen.id)).toBe(1);
    expect((await call("POST", `/api/v1/runs/${frozen.id}/cancel`, key)).status).toBe(200);
    expect((await call("GET", `/api/v1/runs/${frozen.id}`, key)).body.status).toBe("CANCELED");
    expect(await kept(frozen.id)).toBe(0);
  });

  it("a claim reads variables only where the environment (or, for a preview, the preview set) has some; a retry after they were removed keeps no snapshot", async () => {
    const key = keys.development;
    const pr9 = (await call("POST", "/api/v1/admin/projects/demo/environments", ADMIN_TOKEN, { slug: "preview/pr-9" })).body.apiKey;
    for (const k of [key, pr9]) expect((await call("POST", "/api/v1/deployments", k, { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(["hello"]), promote: true })).status).toBe(200);
    expect((await call("POST", admin("preview"), ADMIN_TOKEN, { variables: { DATABASE_HOST: "preview-db.internal", FEATURE: "on" } })).status).toBe(200);
    const kept = async (runId: string) => Number((await database.db("run_variables").where({ run_id: runId }).count<[{ count: string }]>("* as count"))[0].count);
    const runnerId = (await call("POST", "/api/v1/runner/register", RUNNER_TOKEN, { name: "r-development", capacity: 1, checkpoints: false })).body.runnerId;
    const claimOne = async () => (await call("POST", "/api/v1/runner/poll", RUNNER_TOKEN, { runnerId, freeSlots: 1, waitMs: 0 })).body.runs[0];

    // A branch with no variables of its own still gets the preview set.
    const { body: branchRun } = await call("POST", "/api/v1/tasks/hello/trigger", pr9, { payload: 0 });
    const branchClaim = await claimOne();
    expect(branchClaim.runId).toBe(branchRun.id);
    expect(branchClaim.env).toEqual({ DATABASE_HOST: "preview-db.internal", FEATURE: "on" });
    await call("POST", `/api/v1/runner/runs/${branchRun.id}/complete`, RUNNER_TOKEN, { leaseId: branchClaim.leaseId, result: { ok: true, output: null } });

    await call("POST", "/api/v1/envvars", key, { variables: { ONLY: "while-set" } });
    const { body: run } = await call("POST", "/api/v1/tasks/hello/trigger", key, { payload: 1 });
    const first = await claimOne();
    expect(first).toMatchObject({ runId: run.id, attempt: 1, env: { ONLY: "while-set" } });
    expect(await kept(run.id)).toBe(1);
    await call("POST", `/api/v1/runner/runs/${run.id}/complete`, RUNNER_TOKEN, { leaseId: first.leaseId, result: { ok: false, error: { name: "Error", message: "again" } } });
    expect((await call("DELETE", "/api/v1/envvars/ONLY", key)).body.deleted).toBe(true);
    await database.db("runs").where({ id: run.id }).update({ available_at: new Date(0) });
    const retried = await claimOne();
    expect(retried).toMatchObject({ runId: run.id, attempt: 2, env: {} });
    expect(await kept(run.id)).toBe(0);

    // An environment without variables: nothing read, nothing kept.
    const { body: plain } = await call("POST", "/api/v1/tasks/hello/trigger", key, { payload: 2 });
    await call("POST", `/api/v1/runner/runs/${run.id}/complete`, RUNNER_TOKEN, { leaseId: retried.leaseId, result: { ok: true, output: null } });
    const plainClaim = await claimOne();
    expect(plainClaim).toMatchObject({ runId: plain.id, attempt: 1, env: {} });
    expect(await kept(plain.id)).toBe(0);
  });

  it("a database dump holds no value in clear", async () => {
    const columns = await database.db("information_schema.columns")
      .where({ table_schema: "public" })
      .whereIn("data_type", ["text", "bytea", "jsonb", "json", "ARRAY", "character varying"])
      .select("table_name", "column_name");
    expect(columns.length).toBeGreaterThan(10);
    let scanned = 0;
    for (const { table_name, column_name } of columns) {
      const rows = await database.db.raw(`SELECT encode(convert_to(coalesce("${column_name}"::text, ''), 'UTF8'), 'escape') AS t FROM "${table_name}"`);
      for (const row of rows.rows as Array<{ t: string }>) {
        scanned += 1;
        expect(row.t, `${table_name}.${column_name}`).not.toContain(SECRET);
        expect(row.t, `${table_name}.${column_name}`).not.toContain("preview-db.internal");
      }
    }
    expect(scanned).toBeGreaterThan(0);
    // And the raw bytes of the encrypted column do not hold it either.
    const raw = await database.db("environment_variables").select("value_encrypted");
    for (const row of raw) expect(Buffer.from(row.value_encrypted).includes(Buffer.from(SECRET))).toBe(false);
  });

  it("rotate-key re-wraps every data key under the new master key; values stay readable, and the old key alone is then refused at start", async () => {
    await server.close();
    server = await start(keyring(KEY_B, KEY_A));
    expect((await call("GET", "/api/v1/envvars/API_TOKEN", keys.production)).body.value).toBe(SECRET);
    const rotated = await call("POST", "/api/v1/admin/encryption/rotate-key", ADMIN_TOKEN);
    expect(rotated.status).toBe(200);
    expect(rotated.body).toEqual({ masterKeyId: parseMasterKey(KEY_B).id, rewrapped: 1, total: 1 });
    expect((await call("POST", "/api/v1/admin/encryption/rotate-key", ADMIN_TOKEN)).body.rewrapped).toBe(0);
    await server.close();
    server = await start(keyring(KEY_B));
    expect((await call("GET", "/api/v1/envvars/API_TOKEN", keys.production)).body.value).toBe(SECRET);
    expect((await call("GET", "/api/v1/envvars/DATABASE_HOST", keys["preview/pr-7"])).body.value).toBe("preview-db.internal");
    await server.close();
    const old = await start(keyring(KEY_A)).catch((error: unknown) => error);
    expect(old).toBeInstanceOf(EncryptionKeyError);
    expect((old as EncryptionKeyError).code).toBe("ENCRYPTION_KEY_WRONG");
    expect((old as Error).message).toMatch(/STASIS_ENCRYPTION_KEY is wrong/);
    const missing = await start(null).catch((error: unknown) => error);
    expect((missing as EncryptionKeyError).code).toBe("ENCRYPTION_KEY_MISSING");
    expect((missing as Error).message).toMatch(/STASIS_ENCRYPTION_KEY is not set/);
    server = await start(keyring(KEY_B));
  });

  it("a wrong key with a forged key id is caught by GCM authentication, and a row moved to another name does not decrypt", async () => {
    await server.close();
    const forged = keyring(randomBytes(32).toString("hex"));
    const impostor = createKeyring({ id: parseMasterKey(KEY_B).id, key: forged.current.key });
    const refused = await start(impostor).catch((error: unknown) => error);
    expect((refused as EncryptionKeyError).code).toBe("ENCRYPTION_KEY_WRONG");
    expect((refused as Error).message).toMatch(/GCM authentication/);
    server = await start(keyring(KEY_B));
    // Copy production's API_TOKEN ciphertext onto staging's B_TWO: the AAD binds it to its place.
    const source = await database.db("environment_variables").where({ scope: "production", name: "API_TOKEN" }).first("value_encrypted");
    await database.db("environment_variables").where({ scope: "staging", name: "B_TWO" }).update({ value_encrypted: source.value_encrypted });
    const swapped = await call("GET", "/api/v1/envvars/B_TWO", keys.staging);
    expect(swapped.status).toBe(500);
    expect(JSON.stringify(swapped.body)).not.toContain(SECRET);
    // A run of that environment is not handed out without its variables, and does not block the queue.
    await call("POST", "/api/v1/deployments", keys.staging, { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(["hello"]), promote: true });
    const stuck = await call("POST", "/api/v1/tasks/hello/trigger", keys.staging, { payload: 1 });
    const fine = await call("POST", "/api/v1/tasks/hello/trigger", keys["preview/pr-7"], { payload: 2 });
    await call("POST", "/api/v1/deployments", keys["preview/pr-7"], { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(["hello"]), promote: true });
    const runnerId = (await call("POST", "/api/v1/runner/register", RUNNER_TOKEN, { name: "r2", capacity: 2, checkpoints: false })).body.runnerId;
    const polled = await call("POST", "/api/v1/runner/poll", RUNNER_TOKEN, { runnerId, freeSlots: 2, waitMs: 0 });
    expect(polled.status).toBe(200);
    expect(polled.body.runs.map((r: { runId: string }) => r.runId)).toContain(fine.body.id);
    expect(polled.body.runs.map((r: { runId: string }) => r.runId)).not.toContain(stuck.body.id);
    const row = await database.db("runs").where({ id: stuck.body.id }).first("status", "available_at");
    expect(row.status).toBe("QUEUED");
    expect(row.available_at.getTime()).toBeGreaterThan(Date.now() + 30_000);
  });
});
