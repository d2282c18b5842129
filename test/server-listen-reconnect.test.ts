// The server's LISTEN connection outlives a PostgreSQL restart: it reconnects (with backoff, for as
// long as it takes), wakes everything once, and NOTIFY wake-ups arrive promptly again — long before
// the fallback timeouts (a 25 s long poll, the scheduler's 30 s safety sleep) would have.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase, createServer, ensureProject, migrate, type StasisServer } from "../server/index.ts";
import { startDebianPostgres, type DebianPostgres } from "./support/debian-postgres.ts";
import { ADMIN_TOKEN, deploy, eventually, poll, registerRunner, RUNNER_TOKEN, type ServerFixture } from "./support/server-fixture.ts";
import { waitFor } from "./support/wait-for.ts";

let postgres: DebianPostgres;
let db: ReturnType<typeof connectDatabase>;
let server: StasisServer;
let f: ServerFixture;
/** The server's log messages (pino's message argument), captured instead of printed. */
const logged: string[] = [];

const LONG_POLL_MS = 25_000;
/** Much shorter than LONG_POLL_MS and the scheduler's 30 s sleep: only a NOTIFY (or the reconnect's catch-up) is this fast. */
const PROMPT_MS = 8_000;

beforeAll(async () => {
  postgres = await startDebianPostgres();
  const url = await postgres.createDatabase("stasis_listen");
  db = connectDatabase(url);
  await migrate(db);
  server = await createServer({ db, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, publicUrl: "http://127.0.0.1:9999", logger: { level: "info", hooks: { logMethod: (args) => void logged.push(String(args.at(-1))) } }, engine: { schedulerMaxSleepMs: 30_000 } });
  const project = await ensureProject(db, { slug: "demo" });
  const keys = Object.fromEntries(project.keys.map((k) => [k.environment, k.apiKey]));
  const call: ServerFixture["call"] = async (method, u, options = {}) => {
    const key = options.key === undefined ? keys.production : options.key;
    const r = await server.app.inject({ method: method as "GET", url: u, headers: key ? { authorization: `Bearer ${key}` } : {}, ...(options.body !== undefined ? { payload: options.body as object } : {}) });
    return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : null };
  };
  f = { database: { url, db, drop: async () => {} }, server, keys, call, close: async () => {} };
  await deploy(f, ["work"]);
}, 60_000);

afterAll(async () => {
  await server?.close();
  await db?.destroy();
  await postgres?.stop();
});

/** A long poll started now, and a run triggered while it waits: how long until the poll hands the run out. */
async function pollWakesFor(runnerId: string): Promise<{ claimed: string[]; runId: string; leaseId: string; ms: number }> {
  const started = Date.now();
  const polling = poll(f, runnerId, { freeSlots: 1, waitMs: LONG_POLL_MS }).then((p) => ({ p, ms: Date.now() - started }));
  const trig = await eventually(() => f.call("POST", "/api/v1/tasks/work/trigger", { body: { payload: {} } }), (r) => r.status === 200);
  const { p, ms } = await polling;
  return { claimed: p.runs.map((r: { runId: string }) => r.runId), runId: trig.body.id, leaseId: p.runs[0]?.leaseId, ms };
}

describe("LISTEN across a PostgreSQL restart", () => {
  it("reconnects and wakes long polls and the scheduler promptly again", async () => {
    const runnerId = await registerRunner(f, "listener");
    const before = await pollWakesFor(runnerId);
    expect(before.claimed).toEqual([before.runId]);

    // Down until the server's listener has tried to reconnect and failed: one try and giving up (as
    // before the fix) leaves it deaf for good; it must keep trying.
    await postgres.restart({ whileDown: () => waitFor("the listener to fail a reconnect", () => logged.some((m) => m.includes("LISTEN reconnect failed")), { timeoutMs: 20_000 }) });
    expect(logged.some((m) => m.includes("LISTEN connection lost"))).toBe(true);
    // The server's pool drops its dead connections by itself; wait until the API answers again.
    await waitFor("the API to work after the restart", async () => (await f.call("GET", "/api/v1/runs")).status === 200, { timeoutMs: 20_000 });

    // Woken by the LISTEN connection (or by the catch-up pass right after it reconnected) — not by the 25 s timeout.
    const first = await pollWakesFor(runnerId);
    expect(first.claimed).toEqual([first.runId]);
    expect(first.ms).toBeLessThan(PROMPT_MS);
    // And NOTIFYs flow again, not just the catch-up.
    const second = await pollWakesFor(runnerId);
    expect(second.claimed).toEqual([second.runId]);
    expect(second.ms).toBeLessThan(PROMPT_MS);

    // The scheduler sleeps 30 s unless a NOTIFY wakes it: a 300 ms wait completes on time only if it hears one.
    const started = Date.now();
    const wait = await f.call("POST", `/api/v1/runner/runs/${second.runId}/waits`, { key: RUNNER_TOKEN, body: { leaseId: second.leaseId, spec: { kind: "duration", ms: 300 } } });
    expect(wait.status).toBe(200);
    const woke = await eventually(() => poll(f, runnerId, { freeSlots: 0, waitMs: LONG_POLL_MS }), (p) => p.continues.some((c: { runId: string }) => c.runId === second.runId), LONG_POLL_MS);
    expect(woke.continues[0].result).toEqual({ kind: "duration" });
    expect(Date.now() - started).toBeLessThan(PROMPT_MS);
  }, 120_000);
});

