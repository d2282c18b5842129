// A real `pg_dump` (Debian's PostgreSQL, whose pg_dump matches its server) of a database holding
// environment variables, a claimed run's logs and the data keys: no value appears in clear.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { connectDatabase, createKeyring, createServer, ensureProject, generateKey, migrate, parseMasterKey, type StasisServer } from "../server/index.ts";
import { debianPostgresBin, startDebianPostgres, type DebianPostgres } from "./support/debian-postgres.ts";
import { ADMIN_TOKEN, DIGEST, manifest, RUNNER_TOKEN } from "./support/server-fixture.ts";

const SECRET = `dump-me-${randomBytes(8).toString("hex")}`;
const MASTER = generateKey().toString("base64");
let postgres: DebianPostgres;
let db: ReturnType<typeof connectDatabase>;
let server: StasisServer;
let url: string;

beforeAll(async () => {
  postgres = await startDebianPostgres();
  url = await postgres.createDatabase("stasis_dump");
  db = connectDatabase(url);
  await migrate(db);
  server = await createServer({ db, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, logger: false, keyring: createKeyring(parseMasterKey(MASTER)) });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await db?.destroy();
  await postgres?.stop();
});

async function call(method: string, u: string, key: string, body?: unknown) {
  const r = await server.app.inject({ method: method as "GET", url: u, headers: { authorization: `Bearer ${key}` }, ...(body !== undefined ? { payload: body as object } : {}) });
  return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : null };
}

it("pg_dump of the database holds neither a variable's value nor the master key", async () => {
  const { keys } = await ensureProject(db, { slug: "demo" });
  const key = keys.find((k) => k.environment === "production")!.apiKey;
  expect((await call("POST", "/api/v1/envvars", key, { variables: { PAYMENT_TOKEN: SECRET } })).status).toBe(200);
  await call("POST", "/api/v1/admin/projects/demo/environments/preview/envvars", ADMIN_TOKEN, { variables: { PAYMENT_TOKEN: `${SECRET}-preview` } });
  // A run that printed the secret: its stored log line is redacted too.
  await call("POST", "/api/v1/deployments", key, { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(["hello"]), promote: true });
  await call("POST", "/api/v1/tasks/hello/trigger", key, { payload: { note: "no secret here" } });
  const runnerId = (await call("POST", "/api/v1/runner/register", RUNNER_TOKEN, { name: "r", capacity: 1, checkpoints: false })).body.runnerId;
  const claim = (await call("POST", "/api/v1/runner/poll", RUNNER_TOKEN, { runnerId, freeSlots: 1, waitMs: 0 })).body.runs[0];
  expect(claim.env).toEqual({ PAYMENT_TOKEN: SECRET });
  await call("POST", `/api/v1/runner/runs/${claim.runId}/logs`, RUNNER_TOKEN, { leaseId: claim.leaseId, lines: [{ ts: new Date().toISOString(), level: "info", message: `token=${SECRET}` }] });

  const dump = execFileSync(path.join(debianPostgresBin(), "pg_dump"), ["--data-only", "--inserts", url], { maxBuffer: 64 * 1024 * 1024 }).toString("latin1");
  expect(dump).toContain("INSERT INTO public.environment_variables");
  expect(dump).toContain("[redacted:PAYMENT_TOKEN]");
  expect(dump).not.toContain(SECRET);
  const masterBytes = Buffer.from(MASTER, "base64");
  expect(dump).not.toContain(MASTER);
  expect(dump).not.toContain(masterBytes.toString("hex"));
  // bytea is dumped as hex: the secret's bytes in hex are absent as well.
  expect(dump).not.toContain(Buffer.from(SECRET).toString("hex"));
}, 60_000);
