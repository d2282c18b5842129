// The claim's two paths against a real server and PostgreSQL: the one-statement claim for the common
// run and the full claim for the rest (variables, a retry, a resume), mixed in one queue. Each run is
// handed out once, with its attempt and deadline.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inTransaction } from "../server/db/transaction.ts";
import { pollRunner } from "../server/engine/runners.ts";
import { completeWaitpoint } from "../server/engine/waitpoints.ts";
import { deploy, eventually, FAKE_SEAL, poll, registerRunner, RUNNER_TOKEN, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
beforeAll(async () => {
  f = await startServerFixture();
  await deploy(f, ["plain", { id: "bounded", maxDuration: 120 }]);
  await deploy(f, ["plain"], { key: f.keys.staging });
  expect((await f.call("POST", "/api/v1/envvars", { key: f.keys.staging, body: { variables: { REGION: "eu" } } })).status).toBe(200);
});
afterAll(async () => {
  await f?.close();
});

const trigger = async (task: string, options: Record<string, unknown> = {}, key = f.keys.production) => {
  const res = await f.call("POST", `/api/v1/tasks/${task}/trigger`, { key, body: { payload: { task }, ...(Object.keys(options).length ? { options } : {}) } });
  expect(res.status).toBe(200);
  return res.body.id as string;
};

describe("claim paths", () => {
  it("a mixed queue: plain runs, maxDuration from the manifest and from the options, another environment's variables — each handed out once, with one attempt", async () => {
    const plain = await trigger("plain");
    const bounded = await trigger("bounded");
    const withVariables = await trigger("plain", {}, f.keys.staging);
    const optionBudget = await trigger("plain", { maxDuration: 30 });
    const runnerId = await registerRunner(f, "paths");
    const before = Date.now();
    const { runs } = await poll(f, runnerId, { freeSlots: 10 });
    // The one-statement claim's runs come first, then the full claim's (here: the one with variables).
    expect(runs.map((r) => r.runId)).toEqual([plain, bounded, optionBudget, withVariables]);
    const by = Object.fromEntries(runs.map((r) => [r.runId, r]));
    expect(by[plain]).toMatchObject({ attempt: 1, deadline: null, env: {}, resume: null, environment: "production", project: "demo", payload: { task: "plain" } });
    expect(by[plain].deployment.manifest.tasks.map((t: { id: string }) => t.id)).toEqual(["plain", "bounded"]);
    expect(by[withVariables]).toMatchObject({ attempt: 1, env: { REGION: "eu" }, environment: "staging" });
    for (const [id, seconds] of [[bounded, 120], [optionBudget, 30]] as const) {
      const deadline = Date.parse(by[id].deadline);
      expect(deadline).toBeGreaterThanOrEqual(before + seconds * 1000 - 2000);
      expect(deadline).toBeLessThanOrEqual(Date.now() + seconds * 1000 + 2000);
    }
    const rows = await f.database.db("runs").whereIn("id", Object.keys(by)).select("id", "status", "runner_id", "lease_id", "attempt_count", "max_duration_s", "started_at");
    for (const row of rows) expect(row).toMatchObject({ status: "EXECUTING", runner_id: runnerId, lease_id: by[row.id].leaseId, attempt_count: 1, started_at: expect.any(Date) });
    expect(Object.fromEntries(rows.map((r) => [r.id, r.max_duration_s]))).toEqual({ [plain]: null, [bounded]: 120, [withVariables]: null, [optionBudget]: 30 });
    const attempts = await f.database.db("run_attempts").whereIn("run_id", Object.keys(by)).select("run_id", "number", "status", "runner_id");
    expect(attempts).toHaveLength(4);
    expect(attempts.every((a) => a.number === 1 && a.status === "EXECUTING" && a.runner_id === runnerId)).toBe(true);
    expect((await poll(f, runnerId, { freeSlots: 10 })).runs).toEqual([]);
    for (const r of runs) await f.call("POST", `/api/v1/runner/runs/${r.runId}/complete`, { key: RUNNER_TOKEN, body: { leaseId: r.leaseId, result: { ok: true, output: null } } });
  });

  it("a retry and a resume behind plain runs: the retry is attempt 2, the resume keeps its attempt and gets its checkpoint", async () => {
    const runnerId = await registerRunner(f, "paths-2");
    const retried = await trigger("plain");
    const suspended = await trigger("plain");
    const first = (await poll(f, runnerId, { freeSlots: 2 })).runs;
    expect(first.map((r) => r.runId)).toEqual([retried, suspended]);
    const [a, b] = first;
    expect((await f.call("POST", `/api/v1/runner/runs/${retried}/complete`, { key: RUNNER_TOKEN, body: { leaseId: a.leaseId, result: { ok: false, error: { name: "Error", message: "again" } } } })).status).toBe(200);
    await f.database.db("runs").where({ id: retried }).update({ available_at: new Date(0) });
    const wait = await f.call("POST", `/api/v1/runner/runs/${suspended}/waits`, { key: RUNNER_TOKEN, body: { leaseId: b.leaseId, spec: { kind: "event", event: "paths-go" } } });
    await f.call("POST", `/api/v1/runner/runs/${suspended}/suspend`, { key: RUNNER_TOKEN, body: { leaseId: b.leaseId, waitpointId: wait.body.waitpointId, checkpoint: { location: "/ckpt/paths", sizeBytes: 1, ...FAKE_SEAL } } });
    await f.call("POST", "/api/v1/events", { body: { event: "paths-go", payload: null } });
    const later = await trigger("plain");
    const again = await eventually(() => poll(f, runnerId, { freeSlots: 5 }).then((p) => p.runs), (runs) => runs.length > 0);
    const more = again.length < 3 ? (await poll(f, runnerId, { freeSlots: 5 })).runs : [];
    const by = Object.fromEntries([...again, ...more].map((r) => [r.runId, r]));
    expect(Object.keys(by).sort()).toEqual([retried, suspended, later].sort());
    expect(by[retried]).toMatchObject({ attempt: 2, resume: null });
    expect(by[suspended]).toMatchObject({ attempt: 1, resume: { checkpointLocation: "/ckpt/paths" } });
    expect(by[later]).toMatchObject({ attempt: 1, resume: null });
    const attempts = await f.database.db("run_attempts").whereIn("run_id", [retried, suspended, later]).orderBy(["run_id", "number"]).select("run_id", "number", "status");
    expect(attempts.filter((x) => x.run_id === retried).map((x) => [x.number, x.status])).toEqual([[1, "FAILED"], [2, "EXECUTING"]]);
    expect(attempts.filter((x) => x.run_id === suspended).map((x) => x.number)).toEqual([1]);
    expect(attempts.filter((x) => x.run_id === later).map((x) => x.number)).toEqual([1]);
  });

  it("a resume no runner keeps the dump of is claimed for a long poll asleep here by the event's transaction, with its checkpoint and the event: the poll runs no claim", async () => {
    const runnerId = await registerRunner(f, "paths-3");
    const suspended = await trigger("plain");
    const [claim] = (await poll(f, runnerId, { freeSlots: 1 })).runs;
    expect(claim.runId).toBe(suspended);
    const wait = await f.call("POST", `/api/v1/runner/runs/${suspended}/waits`, { key: RUNNER_TOKEN, body: { leaseId: claim.leaseId, spec: { kind: "event", event: "paths-resume" } } });
    const reported = await f.call("POST", `/api/v1/runner/runs/${suspended}/suspend`, { key: RUNNER_TOKEN, body: { leaseId: claim.leaseId, waitpointId: wait.body.waitpointId, checkpoint: { location: "/ckpt/paths-3", sizeBytes: 1, ...FAKE_SEAL } } });
    expect(reported.body.status).toBe("SUSPENDED");

    const issued: string[] = [];
    const onQuery = (q: { sql: string }) => issued.push(q.sql);
    const db = f.database.db;
    const wakeListeners = () => f.server.engine.listener.events.listenerCount("runs");
    const idle = wakeListeners();
    const polling = pollRunner(f.server.engine, { runnerId, freeSlots: 2, waitMs: 20_000 });
    try {
      // Asleep after its first look (two listeners: its wake count and its sleep).
      await eventually(async () => wakeListeners(), (n) => n >= idle + 2);
      db.on("query", onQuery);
      const sent = await f.call("POST", "/api/v1/events", { body: { event: "paths-resume", payload: { seat: "F7" } } });
      expect(sent.body.matchedWaitpoints).toBe(1);
      const { runs } = await polling;
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ runId: suspended, attempt: 1, resume: { checkpointLocation: "/ckpt/paths-3", result: { kind: "event", event: "paths-resume", payload: { seat: "F7" } } } });
      // Neither claim looked for it: the event's transaction queued it and claimed it for the sleeping poll.
      expect(issued.filter((sql) => /stasis_claim_fresh_runs|stasis_lock_claimable_runs/.test(sql))).toEqual([]);
      expect(issued.filter((sql) => /stasis_queue_resume_candidate|UPDATE runs SET status = 'QUEUED', resume/.test(sql))).toHaveLength(1);
    } finally {
      db.off("query", onQuery);
    }
    const row = await f.database.db("runs").where({ id: suspended }).first("status", "runner_id", "attempt_count");
    expect(row).toMatchObject({ status: "EXECUTING", runner_id: runnerId, attempt_count: 1 });
  });
});

describe("a long poll whose runner hung up", () => {
  it("takes nothing for it and runs no statement once it hangs up", async () => {
    const runnerId = await registerRunner(f, "hangs-up");
    const issued: string[] = [];
    const onQuery = (q: { sql: string }) => issued.push(q.sql);
    const db = f.database.db;
    db.on("query", onQuery);
    try {
      const hangUp = new AbortController();
      const wakeListeners = () => f.server.engine.listener.events.listenerCount("runs");
      const idle = wakeListeners();
      const polling = pollRunner(f.server.engine, { runnerId, freeSlots: 1, waitMs: 20_000 }, hangUp.signal);
      // Its first look is done and it sleeps until a wake or the deadline: the poll counts wakes from its start, and its
      // sleep listens for the next one (two listeners). A statement still in flight then would not count as "after".
      await eventually(async () => wakeListeners(), (n) => n >= idle + 2);
      expect(issued.some((sql) => sql.includes("stop_pending"))).toBe(true);
      const before = issued.length;
      hangUp.abort();
      // A run queued now would wake it: it must not claim it for a runner that left, nor look again.
      const id = await trigger("plain");
      expect(await polling).toEqual({ runs: [], continues: [], stops: [] });
      expect(issued.slice(before).filter((sql) => /stasis_claim|stop_pending|FOR UPDATE/i.test(sql))).toEqual([]);
      expect((await f.call("GET", `/api/v1/runs/${id}`)).body.status).toBe("QUEUED");
    } finally {
      db.off("query", onQuery);
    }
  });
});

describe("a resume pushed to the long poll of the runner that keeps its dump", () => {
  beforeAll(async () => {
    // What earlier tests left queued goes to another runner: each test below claims the run it triggers.
    await poll(f, await registerRunner(f, "push-sweeper"), { freeSlots: 100 });
  });
  /** A run claimed by `runnerId` and waiting on `event`, its process alive (WAITING). */
  const waitingOn = async (runnerId: string, event: string) => {
    const id = await trigger("plain");
    const [claim] = (await poll(f, runnerId, { freeSlots: 1 })).runs;
    expect(claim.runId).toBe(id);
    const wait = await f.call("POST", `/api/v1/runner/runs/${id}/waits`, { key: RUNNER_TOKEN, body: { leaseId: claim.leaseId, spec: { kind: "event", event } } });
    return { id, leaseId: claim.leaseId as string, waitpointId: wait.body.waitpointId as string };
  };
  /** The same run suspended, its dump kept by that runner (`keptLocally`). */
  const suspendKept = async (runnerId: string, event: string) => {
    const { id, leaseId, waitpointId } = await waitingOn(runnerId, event);
    const body = { leaseId, waitpointId, checkpoint: { location: `/ckpt/${id}`, sizeBytes: 1, ...FAKE_SEAL }, keptLocally: true };
    expect((await f.call("POST", `/api/v1/runner/runs/${id}/suspend`, { key: RUNNER_TOKEN, body })).body.status).toBe("SUSPENDED");
    return { id, waitpointId };
  };
  const claimStatements = (issued: string[]) => issued.filter((sql) => /stasis_claim_fresh_runs|stasis_lock_claimable_runs/.test(sql));
  /** A long poll of `runnerId` asleep after its first look (its wake count and its sleep listen). */
  const asleep = async (runnerId: string, freeSlots: number, claimKey: string) => {
    const idle = f.server.engine.listener.events.listenerCount("runs");
    const polling = pollRunner(f.server.engine, { runnerId, freeSlots, waitMs: 20_000, claimKey });
    await eventually(async () => f.server.engine.listener.events.listenerCount("runs"), (n) => n >= idle + 2);
    return { polling };
  };

  it("is claimed by the event's transaction and answered by the poll, with its checkpoint, the event and the poll's claim key; no claim runs", async () => {
    const runnerId = await registerRunner(f, "push-1");
    const { id } = await suspendKept(runnerId, "push-go");
    const { polling } = await asleep(runnerId, 1, "pushkey1");
    const issued: string[] = [];
    const onQuery = (q: { sql: string }) => issued.push(q.sql);
    f.database.db.on("query", onQuery);
    try {
      const sent = await f.call("POST", "/api/v1/events", { body: { event: "push-go", payload: { seat: "A1" } } });
      expect(sent.body.matchedWaitpoints).toBe(1);
      const { runs } = await polling;
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ runId: id, attempt: 1, resume: { checkpointLocation: `/ckpt/${id}`, result: { kind: "event", event: "push-go", payload: { seat: "A1" } } } });
      expect(runs[0].leaseId).toMatch(/^lease_pushkey1_/);
      expect(claimStatements(issued)).toEqual([]);
    } finally {
      f.database.db.off("query", onQuery);
    }
    expect(await f.database.db("runs").where({ id }).first("status", "runner_id", "lease_id")).toMatchObject({ status: "EXECUTING", runner_id: runnerId });
  });

  it("takes no more runs than the poll has free slots: of two resumes one is pushed, the other waits held for the runner", async () => {
    const runnerId = await registerRunner(f, "push-2");
    const a = await suspendKept(runnerId, "push-both");
    const b = await suspendKept(runnerId, "push-both");
    const { polling } = await asleep(runnerId, 1, "pushkey2");
    expect((await f.call("POST", "/api/v1/events", { body: { event: "push-both", payload: null } })).body.matchedWaitpoints).toBe(2);
    const { runs } = await polling;
    expect(runs.map((r) => r.runId)).toEqual([a.id]);
    const other = await f.database.db("runs").where({ id: b.id }).first("status", "resume_runner_id");
    expect(other).toMatchObject({ status: "QUEUED", resume_runner_id: runnerId });
    const next = (await poll(f, runnerId, { freeSlots: 1 })).runs;
    expect(next).toMatchObject([{ runId: b.id, resume: { checkpointLocation: `/ckpt/${b.id}` } }]);
  });

  it("a run waiting with its process alive gets its continue from the transaction that ends its wait: the poll answers with it and looks for nothing", async () => {
    const runnerId = await registerRunner(f, "push-4");
    const { id, leaseId, waitpointId } = await waitingOn(runnerId, "push-continue");
    expect(await f.database.db("runs").where({ id }).first("status")).toMatchObject({ status: "WAITING" });
    // The runner's slots are all taken (its run waits in-process): it polls with none free, for continues and stops.
    const { polling } = await asleep(runnerId, 0, "pushkey4");
    const issued: string[] = [];
    const onQuery = (q: { sql: string }) => issued.push(q.sql);
    f.database.db.on("query", onQuery);
    try {
      expect((await f.call("POST", "/api/v1/events", { body: { event: "push-continue", payload: { row: 3 } } })).body.matchedWaitpoints).toBe(1);
      const answer = await polling;
      expect(answer.runs).toEqual([]);
      expect(answer.continues).toEqual([{ runId: id, leaseId, waitpointId, result: { kind: "event", id: expect.any(String), event: "push-continue", payload: { row: 3 } } }]);
      // Handed by the event's transaction: the poll did not look for pending work again, nor take the continue itself.
      expect(issued.filter((sql) => /AS continues|FOR UPDATE OF "r" SKIP LOCKED/i.test(sql))).toEqual([]);
    } finally {
      f.database.db.off("query", onQuery);
    }
    expect(await f.database.db("runs").where({ id }).first("status", "waitpoint_id")).toEqual({ status: "EXECUTING", waitpoint_id: null });
  });

  it("a resume no runner keeps the dump of goes to exactly one poll asleep here whose runner can restore it: not a runc runner's for a process checkpoint, nor one that cannot checkpoint", async () => {
    const register = async (name: string, workload: string, checkpoints = true) =>
      (await f.call("POST", "/api/v1/runner/register", { key: RUNNER_TOKEN, body: { name, capacity: 4, checkpoints, workload } })).body.runnerId as string;
    const takers = [await registerRunner(f, "any-a"), await registerRunner(f, "any-b")];
    const runc = await register("any-runc", "runc");
    const cannot = await register("any-cannot", "process", false);
    // Suspended by a process runner that keeps no dump: nobody is held for.
    const { id, leaseId, waitpointId } = await waitingOn(await registerRunner(f, "any-suspender"), "any-go");
    const body = { leaseId, waitpointId, checkpoint: { location: `/ckpt/${id}`, sizeBytes: 1, ...FAKE_SEAL } };
    expect((await f.call("POST", `/api/v1/runner/runs/${id}/suspend`, { key: RUNNER_TOKEN, body })).body.status).toBe("SUSPENDED");
    const sleepers = new Map<string, { polling: ReturnType<typeof pollRunner>; hangUp: AbortController }>();
    // The ones that must be passed over have the most free slots: the poll with the most is the one taken.
    for (const [runnerId, freeSlots] of [[takers[0]!, 1], [takers[1]!, 1], [runc, 3], [cannot, 2]] as const) {
      const idle = f.server.engine.listener.events.listenerCount("runs");
      const hangUp = new AbortController();
      sleepers.set(runnerId, { polling: pollRunner(f.server.engine, { runnerId, freeSlots, waitMs: 20_000 }, hangUp.signal), hangUp });
      await eventually(async () => f.server.engine.listener.events.listenerCount("runs"), (n) => n >= idle + 2);
    }
    expect((await f.call("POST", "/api/v1/events", { body: { event: "any-go", payload: null } })).body.matchedWaitpoints).toBe(1);
    const { runnerId: taker } = await Promise.race(takers.map((runnerId) => sleepers.get(runnerId)!.polling.then(() => ({ runnerId }))));
    const answer = await sleepers.get(taker)!.polling;
    expect(answer.runs).toMatchObject([{ runId: id, attempt: 1, resume: { checkpointLocation: `/ckpt/${id}` } }]);
    // The others were passed over: hung up, they answer nothing.
    for (const [runnerId, sleeper] of sleepers) {
      if (runnerId === taker) continue;
      sleeper.hangUp.abort();
      expect((await sleeper.polling).runs, runnerId).toEqual([]);
    }
    expect(await f.database.db("run_attempts").where({ run_id: id }).select("number", "runner_id")).toEqual([{ number: 1, runner_id: taker }]);
  });

  /** A runner that keeps its dumps in checkpoint site `site` (runner/checkpoint-site.ts), or none. */
  const registerAt = async (name: string, site?: string) => {
    const res = await f.call("POST", "/api/v1/runner/register", { key: RUNNER_TOKEN, body: { name, capacity: 4, checkpoints: true, ...(site ? { checkpointSite: site } : {}) } });
    expect(res.status).toBe(200);
    return res.body.runnerId as string;
  };

  it("a resume whose holder has no poll asleep goes to the poll of a runner on the holder's checkpoint site, not to another with more free slots", async () => {
    const site = "0123456789abcdef0123456789abcdef";
    const holder = await registerAt("site-holder", site);
    const { id } = await suspendKept(holder, "site-go");
    const beside = await registerAt("site-beside", site);
    const elsewhere = await registerAt("site-elsewhere", "fedcba9876543210fedcba9876543210");
    const plain = await registerAt("site-none");
    const sleepers = new Map<string, { polling: ReturnType<typeof pollRunner>; hangUp: AbortController }>();
    // The holder is busy (no poll); the ones to pass over have more free slots.
    for (const [runnerId, freeSlots] of [[beside, 1], [elsewhere, 3], [plain, 2]] as const) {
      const idle = f.server.engine.listener.events.listenerCount("runs");
      const hangUp = new AbortController();
      sleepers.set(runnerId, { polling: pollRunner(f.server.engine, { runnerId, freeSlots, waitMs: 20_000 }, hangUp.signal), hangUp });
      await eventually(async () => f.server.engine.listener.events.listenerCount("runs"), (n) => n >= idle + 2);
    }
    const issued: string[] = [];
    const onQuery = (q: { sql: string }) => issued.push(q.sql);
    f.database.db.on("query", onQuery);
    try {
      expect((await f.call("POST", "/api/v1/events", { body: { event: "site-go", payload: null } })).body.matchedWaitpoints).toBe(1);
      expect((await sleepers.get(beside)!.polling).runs).toMatchObject([{ runId: id, attempt: 1, resume: { checkpointLocation: `/ckpt/${id}` } }]);
      // Pushed by the event's transaction: no poll was woken to claim it.
      expect(claimStatements(issued)).toEqual([]);
    } finally {
      f.database.db.off("query", onQuery);
    }
    for (const runnerId of [elsewhere, plain]) {
      sleepers.get(runnerId)!.hangUp.abort();
      expect((await sleepers.get(runnerId)!.polling).runs, runnerId).toEqual([]);
    }
    expect(await f.database.db("run_attempts").where({ run_id: id }).select("number", "runner_id")).toEqual([{ number: 1, runner_id: beside }]);
  });

  it("held for its holder, a resume is claimed by a runner of the holder's site, never by another; a malformed site is refused naming it", async () => {
    const bad = await f.call("POST", "/api/v1/runner/register", { key: RUNNER_TOKEN, body: { name: "site-bad", capacity: 4, checkpoints: true, checkpointSite: "../../etc" } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toMatch(/checkpointSite.*checkpoint site: 32 lower-case hex characters/);
    const site = "00000000000000000000000000000abc";
    const holder = await registerAt("held-holder", site);
    const { id } = await suspendKept(holder, "held-site-go");
    const beside = await registerAt("held-beside", site);
    const elsewhere = await registerAt("held-elsewhere", "00000000000000000000000000000def");
    expect((await f.call("POST", "/api/v1/events", { body: { event: "held-site-go", payload: null } })).body.matchedWaitpoints).toBe(1);
    // No poll was asleep: it waits, held for the holder.
    expect(await f.database.db("runs").where({ id }).first("status", "resume_runner_id")).toEqual({ status: "QUEUED", resume_runner_id: holder });
    expect((await poll(f, elsewhere, { freeSlots: 4 })).runs).toEqual([]);
    expect((await poll(f, beside, { freeSlots: 4 })).runs).toMatchObject([{ runId: id, attempt: 1, resume: { checkpointLocation: `/ckpt/${id}` } }]);
    expect(await f.database.db("run_attempts").where({ run_id: id }).select("number", "runner_id")).toEqual([{ number: 1, runner_id: beside }]);
  });

  it("a runc checkpoint no runner keeps goes to the runc runner's poll asleep here, not to a process runner's", async () => {
    const proc = await registerRunner(f, "runc-check-proc");
    const runc = (await f.call("POST", "/api/v1/runner/register", { key: RUNNER_TOKEN, body: { name: "runc-check-runc", capacity: 4, checkpoints: true, workload: "runc" } })).body.runnerId as string;
    const { id, leaseId, waitpointId } = await waitingOn(runc, "runc-go");
    const body = { leaseId, waitpointId, checkpoint: { location: `/ckpt/${id}`, sizeBytes: 1, ...FAKE_SEAL } };
    expect((await f.call("POST", `/api/v1/runner/runs/${id}/suspend`, { key: RUNNER_TOKEN, body })).body.status).toBe("SUSPENDED");
    const procHangUp = new AbortController();
    let idle = f.server.engine.listener.events.listenerCount("runs");
    const procPolling = pollRunner(f.server.engine, { runnerId: proc, freeSlots: 4, waitMs: 20_000 }, procHangUp.signal);
    await eventually(async () => f.server.engine.listener.events.listenerCount("runs"), (n) => n >= idle + 2);
    idle = f.server.engine.listener.events.listenerCount("runs");
    const runcPolling = pollRunner(f.server.engine, { runnerId: runc, freeSlots: 1, waitMs: 20_000 });
    await eventually(async () => f.server.engine.listener.events.listenerCount("runs"), (n) => n >= idle + 2);
    expect((await f.call("POST", "/api/v1/events", { body: { event: "runc-go", payload: null } })).body.matchedWaitpoints).toBe(1);
    expect((await runcPolling).runs).toMatchObject([{ runId: id, resume: { checkpointLocation: `/ckpt/${id}` } }]);
    procHangUp.abort();
    expect((await procPolling).runs).toEqual([]);
  });

  it("gives the slot back when the transaction that pushed rolls back: the poll answers only the resume that committed", async () => {
    const runnerId = await registerRunner(f, "push-3");
    const { id, waitpointId } = await suspendKept(runnerId, "push-later");
    const { polling } = await asleep(runnerId, 1, "pushkey3");
    const rolledBack = inTransaction(f.database.db, async (trx) => {
      await completeWaitpoint(trx, waitpointId, { kind: "event", id: "evt_rolled_back", event: "push-later", payload: "lost" });
      throw new Error("rolled back on purpose");
    });
    await expect(rolledBack).rejects.toThrow("rolled back on purpose");
    expect(await f.database.db("runs").where({ id }).first("status")).toMatchObject({ status: "SUSPENDED" });
    expect((await f.call("POST", "/api/v1/events", { body: { event: "push-later", payload: "kept" } })).body.matchedWaitpoints).toBe(1);
    const { runs } = await polling;
    expect(runs).toMatchObject([{ runId: id, resume: { result: { payload: "kept" } } }]);
    expect(await f.database.db("run_attempts").where({ run_id: id }).select("number")).toEqual([{ number: 1 }]);
  });
});
