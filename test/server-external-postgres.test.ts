// The server against Debian's PostgreSQL, reached only through a URL (as with DATABASE_URL): its own
// initdb'd data dir, its own port, stopped afterwards. Installs `postgresql` with apt when missing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase, createServer, ensureProject, migrate, type StasisServer } from "../server/index.ts";
import { startDebianPostgres, type DebianPostgres } from "./support/debian-postgres.ts";
import { ADMIN_TOKEN, deploy, poll, registerRunner, RUNNER_TOKEN, type ServerFixture } from "./support/server-fixture.ts";

let postgres: DebianPostgres;
let url: string;
let db: ReturnType<typeof connectDatabase>;
const servers: StasisServer[] = [];
const extraDbs: Array<ReturnType<typeof connectDatabase>> = [];

beforeAll(async () => {
  postgres = await startDebianPostgres();
  url = await postgres.createDatabase("stasis_ext");
  db = connectDatabase(url);
  await migrate(db);
  await migrate(db); // a second start finds nothing to do
});

afterAll(async () => {
  for (const s of servers) await s.close();
  for (const d of extraDbs) await d.destroy();
  await db?.destroy();
  await postgres?.stop();
});

async function fixture(server: StasisServer, keys: Record<string, string>): Promise<ServerFixture> {
  const call: ServerFixture["call"] = async (method, u, options = {}) => {
    const key = options.key === undefined ? keys.production : options.key;
    const r = await server.app.inject({ method: method as "GET", url: u, headers: key ? { authorization: `Bearer ${key}` } : {}, ...(options.body !== undefined ? { payload: options.body as object } : {}) });
    return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : null };
  };
  return { database: { url, db, drop: async () => {} }, server, keys, call, close: async () => {} };
}

describe("server on Debian's PostgreSQL through a URL", () => {
  it("trigger → claim → wait for an event → complete, across two server replicas woken by NOTIFY", async () => {
    const a = await createServer({ db, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, logger: false });
    const dbB = connectDatabase(url);
    extraDbs.push(dbB);
    const b = await createServer({ db: dbB, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, logger: false });
    servers.push(a, b);
    const project = await ensureProject(db, { slug: "demo" });
    const keys = Object.fromEntries(project.keys.map((k) => [k.environment, k.apiKey]));
    const fa = await fixture(a, keys);
    const fb = await fixture(b, keys);
    await deploy(fa, ["hello"]);
    const runnerId = await registerRunner(fa);

    // A runner long-polls replica A; the trigger lands on replica B; NOTIFY wakes A's poll.
    const started = Date.now();
    const pending = poll(fa, runnerId, { waitMs: 10_000 });
    await new Promise((r) => setTimeout(r, 100)); // let the poll start waiting (not a correctness sleep)
    const trig = await fb.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: { x: 1 } } });
    const claimed = await pending;
    const wokeAfter = Date.now() - started;
    expect(claimed.runs[0].runId).toBe(trig.body.id);
    expect(wokeAfter).toBeLessThan(5_000);
    console.log(`cross-replica wake: poll on A returned ${wokeAfter} ms after it started (trigger on B)`);

    const lease = claimed.runs[0].leaseId;
    await fa.call("POST", `/api/v1/runner/runs/${trig.body.id}/waits`, { key: RUNNER_TOKEN, body: { leaseId: lease, spec: { kind: "event", event: "paid", filter: { ok: [true] } } } });
    const cont = poll(fa, runnerId, { freeSlots: 0, waitMs: 10_000 });
    await fb.call("POST", "/api/v1/events", { body: { event: "paid", payload: { ok: true } } });
    expect((await cont).continues[0].result).toMatchObject({ kind: "event", payload: { ok: true } });
    await fb.call("POST", `/api/v1/runner/runs/${trig.body.id}/complete`, { key: RUNNER_TOKEN, body: { leaseId: lease, result: { ok: true, output: "done" } } });
    const view = await fa.call("GET", `/api/v1/runs/${trig.body.id}`);
    expect(view.body).toMatchObject({ status: "COMPLETED", output: "done" });
    expect((await fa.server.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
  });
});
