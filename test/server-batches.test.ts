// Batched paths of the server: a batchTrigger of 1,000 items, several runners claiming one burst
// with long polls, and several ends reported in one call.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploy, eventually, poll, registerRunner, RUNNER_TOKEN, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
beforeAll(async () => {
  f = await startServerFixture();
  await deploy(f, ["noop", "other"]);
});
afterAll(async () => {
  await f?.close();
});

const items = (n: number, task = "noop") => Array.from({ length: n }, (_, i) => ({ task, payload: { i } }));

describe("batchTrigger", () => {
  it("accepts 1,000 items and writes every row, in item order, keys honoured", async () => {
    const before = await f.call("POST", "/api/v1/tasks/other/trigger", { body: { payload: null, options: { idempotencyKey: "taken" } } });
    const batch = [...items(997), { task: "other", payload: { again: true }, options: { idempotencyKey: "taken" } }, { task: "noop", payload: 1, options: { idempotencyKey: "twice" } }, { task: "noop", payload: 2, options: { idempotencyKey: "twice" } }];
    const res = await f.call("POST", "/api/v1/tasks/batch", { body: { items: batch } });
    expect(res.status).toBe(200);
    const runs = res.body.runs as Array<{ id: string; isCached: boolean }>;
    expect(runs).toHaveLength(1000);
    // The key that named a run already answers with that run; a key repeated in the batch gets the first item's run.
    expect(runs[997]).toEqual({ id: before.body.id, isCached: true });
    expect(runs[998].isCached).toBe(false);
    expect(runs[999]).toEqual({ id: runs[998].id, isCached: true });
    const fresh = runs.filter((r) => !r.isCached).map((r) => r.id);
    expect(new Set(fresh).size).toBe(998);
    const rows = await f.database.db("runs").whereIn("id", fresh).orderBy("seq").select("id", "status", "payload");
    expect(rows).toHaveLength(998);
    expect(rows.every((r) => r.status === "QUEUED")).toBe(true);
    // Claimed in the order the items came.
    expect(rows.slice(0, 997).map((r) => r.payload.i)).toEqual(Array.from({ length: 997 }, (_, i) => i));
  });

  it("a batch of plain items (no key, version or delay) keeps every item's options, payload and order", async () => {
    const batch = [
      { task: "noop", payload: null, options: { tags: ["a", "b"], maxAttempts: 3, maxDuration: 60 } },
      { task: "other", payload: { nested: [1, "two", { three: null }] } },
      ...items(50),
      { task: "noop", payload: "last", options: { tags: [] } },
    ];
    const res = await f.call("POST", "/api/v1/tasks/batch", { body: { items: batch } });
    expect(res.status).toBe(200);
    const ids = (res.body.runs as Array<{ id: string; isCached: boolean }>).map((r) => r.id);
    expect(res.body.runs.every((r: { isCached: boolean }) => !r.isCached)).toBe(true);
    const rows = await f.database.db("runs").whereIn("id", ids).orderBy("seq").select("id", "task_id", "status", "payload", "tags", "max_attempts", "max_duration_s", "deployment_id", "idempotency_key");
    expect(rows.map((r) => r.id)).toEqual(ids);
    expect(rows[0]).toMatchObject({ task_id: "noop", status: "QUEUED", payload: null, tags: ["a", "b"], max_attempts: 3, max_duration_s: 60, deployment_id: null, idempotency_key: null });
    expect(rows[1]).toMatchObject({ task_id: "other", payload: { nested: [1, "two", { three: null }] }, tags: [], max_attempts: null });
    expect(rows.slice(2, 52).map((r) => r.payload.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(rows[52]).toMatchObject({ payload: "last", tags: [] });
    // The stored null is JSON null, as the single trigger stores it.
    const [raw] = (await f.database.db.raw("SELECT payload IS NULL AS sql_null, jsonb_typeof(payload) AS type FROM runs WHERE id = ?", [ids[0]])).rows;
    expect(raw).toEqual({ sql_null: false, type: "null" });
  });

  it("refuses 1,001 items and an unknown task anywhere in the batch, writing nothing", async () => {
    const count = async () => Number((await f.database.db("runs").count<{ count: string }[]>("* as count"))[0].count);
    const start = await count();
    const tooMany = await f.call("POST", "/api/v1/tasks/batch", { body: { items: items(1001) } });
    expect(tooMany.status).toBe(400);
    const unknown = await f.call("POST", "/api/v1/tasks/batch", { body: { items: [...items(10), { task: "nope", payload: null }] } });
    expect(unknown.status).toBe(404);
    expect(await count()).toBe(start);
  });
});

describe("batched claims", () => {
  it("several runners long-polling one burst never get the same run: each run has exactly one attempt", async () => {
    await burstIsSharedOnce("burst");
  });

  // Every claim of a run in an environment with variables is the full claim (its lock: migration 018).
  it("the same in an environment with variables: each run has exactly one attempt, and its process gets them", async () => {
    expect((await f.call("POST", "/api/v1/envvars", { body: { variables: { BURST_SETTING: "on" } } })).status).toBe(200);
    try {
      expect([...(await burstIsSharedOnce("burst-with-variables"))]).toEqual([JSON.stringify({ BURST_SETTING: "on" })]);
    } finally {
      expect((await f.call("DELETE", "/api/v1/envvars/BURST_SETTING")).status).toBe(200);
    }
  });
});

/**
 * Five runners long-poll while a batch of 300 lands, each taking 7 at a time and completing them;
 * every run must be claimed once, with one attempt, and by more than one runner between them.
 * Returns the distinct `env` the claims carried.
 */
async function burstIsSharedOnce(name: string): Promise<Set<string>> {
  // Drain what earlier tests queued.
  const drain = await registerRunner(f, `${name}-drain`);
  for (;;) {
    const { runs } = await poll(f, drain, { freeSlots: 1000 });
    if (runs.length === 0) break;
    for (let i = 0; i < runs.length; i += 100) {
      await f.call("POST", "/api/v1/runner/complete", { key: RUNNER_TOKEN, body: { items: runs.slice(i, i + 100).map((r: any) => ({ runId: r.runId, leaseId: r.leaseId, result: { ok: true, output: null } })) } });
    }
  }

  const runnerIds = await Promise.all(Array.from({ length: 5 }, (_, i) => registerRunner(f, `${name}-${i}`)));
  const claimedBy = new Map<string, string[]>();
  const envs = new Set<string>();
  let stop = false;
  // Every runner is waiting in a long poll when the burst lands, and keeps polling until it is over.
  const loops = runnerIds.map(async (runnerId) => {
    while (!stop) {
      const { runs } = await poll(f, runnerId, { freeSlots: 7, waitMs: 300 });
      for (const run of runs) {
        claimedBy.set(run.runId, [...(claimedBy.get(run.runId) ?? []), runnerId]);
        envs.add(JSON.stringify(run.env));
      }
      if (runs.length === 0) continue;
      const done = await f.call("POST", "/api/v1/runner/complete", { key: RUNNER_TOKEN, body: { items: runs.map((r: any) => ({ runId: r.runId, leaseId: r.leaseId, result: { ok: true, output: { by: runnerId } } })) } });
      expect(done.status).toBe(200);
      expect(done.body.results.every((r: any) => r.ok && r.status === "COMPLETED")).toBe(true);
    }
  });
  const burst = await f.call("POST", "/api/v1/tasks/batch", { body: { items: items(300) } });
  const ids = (burst.body.runs as Array<{ id: string }>).map((r) => r.id);
  await eventually(
    () => f.database.db("runs").whereIn("id", ids).where({ status: "COMPLETED" }).count<{ count: string }[]>("* as count"),
    (rows) => Number(rows[0].count) === ids.length,
    60_000,
  );
  stop = true;
  await Promise.all(loops);

  for (const id of ids) expect(claimedBy.get(id)).toHaveLength(1);
  const attempts = await f.database.db("run_attempts").whereIn("run_id", ids).select("run_id", "runner_id", "status");
  expect(attempts).toHaveLength(ids.length);
  expect(new Set(attempts.map((a) => a.run_id)).size).toBe(ids.length);
  expect(attempts.every((a) => a.status === "COMPLETED" && a.runner_id === claimedBy.get(a.run_id)![0])).toBe(true);
  // More than one runner took part: the burst was shared, not handed to one poll.
  expect(new Set(attempts.map((a) => a.runner_id)).size).toBeGreaterThan(1);
  return envs;
}

describe("batched completions", () => {
  it("answers each item as the single route would: a lost lease or an unknown run fails only its own item, and a repeat gets the same answer", async () => {
    const runnerId = await registerRunner(f, "ends");
    const burst = await f.call("POST", "/api/v1/tasks/batch", { body: { items: items(3) } });
    const ids = (burst.body.runs as Array<{ id: string }>).map((r) => r.id);
    const claimed = await eventually(
      async () => [...(await poll(f, runnerId, { freeSlots: 3, waitMs: 500 })).runs],
      (runs) => runs.length === 3,
    );
    const [a, b, c] = ids.map((id) => claimed.find((r: any) => r.runId === id));
    const body = {
      items: [
        { runId: a.runId, leaseId: a.leaseId, result: { ok: true, output: { n: 1 } } },
        { runId: b.runId, leaseId: "lease_not_this_one", result: { ok: true, output: null } },
        { runId: "run_missing", leaseId: "x", result: { ok: true, output: null } },
        { runId: c.runId, leaseId: c.leaseId, result: { ok: false, error: { name: "Error", message: "no", doNotRetry: true } } },
      ],
    };
    const res = await f.call("POST", "/api/v1/runner/complete", { key: RUNNER_TOKEN, body });
    expect(res.status).toBe(200);
    expect(res.body.results[0]).toEqual({ runId: a.runId, ok: true, status: "COMPLETED", retryAt: null });
    expect(res.body.results[1]).toMatchObject({ runId: b.runId, ok: false, error: { status: 409 } });
    expect(res.body.results[2]).toMatchObject({ runId: "run_missing", ok: false, error: { status: 404 } });
    expect(res.body.results[3]).toEqual({ runId: c.runId, ok: true, status: "FAILED", retryAt: null });
    const again = await f.call("POST", "/api/v1/runner/complete", { key: RUNNER_TOKEN, body });
    expect(again.body).toEqual(res.body);
    const view = await f.call("GET", `/api/v1/runs/${a.runId}`);
    expect(view.body).toMatchObject({ status: "COMPLETED", output: { n: 1 } });
    expect((await f.call("GET", `/api/v1/runs/${b.runId}`)).body.status).toBe("EXECUTING");
  });
});

describe("batched ends and waiting parents", () => {
  it("children ended together in one call complete the parent's wait once, with every result in item order", async () => {
    const runnerId = await registerRunner(f, "family");
    const r = (path: string, body: unknown) => f.call("POST", `/api/v1/runner/runs/${path}`, { key: RUNNER_TOKEN, body });
    await f.call("POST", "/api/v1/tasks/noop/trigger", { body: { payload: "parent" } });
    const parent = (await eventually(() => poll(f, runnerId, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length === 1)).runs[0];
    const kids = await r(`${parent.runId}/trigger`, { leaseId: parent.leaseId, wait: true, items: [{ task: "other", payload: 1 }, { task: "other", payload: 2 }, { task: "other", payload: 3 }] });
    const wait = await r(`${parent.runId}/waits`, { leaseId: parent.leaseId, spec: { kind: "runs", runIds: kids.body.runIds } });
    expect(wait.body.result).toBeNull();
    const claimed = await eventually(() => poll(f, runnerId, { freeSlots: 3, waitMs: 500 }), (p) => p.runs.length === 3);
    const byId = Object.fromEntries(claimed.runs.map((c: any) => [c.runId, c]));
    const ids = kids.body.runIds as string[];
    const ends = await f.call("POST", "/api/v1/runner/complete", {
      key: RUNNER_TOKEN,
      body: { items: ids.map((id, i) => ({ runId: id, leaseId: byId[id].leaseId, result: { ok: true, output: i === 1 ? null : { n: i } } })) },
    });
    expect(ends.body.results.map((x: any) => x.status)).toEqual(["COMPLETED", "COMPLETED", "COMPLETED"]);
    const next = await eventually(() => poll(f, runnerId, { freeSlots: 0, waitMs: 500 }), (p) => p.continues.length === 1);
    expect(next.continues[0].result).toEqual({
      kind: "runs",
      results: ids.map((id, i) => ({ ok: true, runId: id, taskId: "other", output: i === 1 ? null : { n: i } })),
    });
    // A JSON null output is stored as the single route stores it.
    expect((await f.database.db("runs").where({ id: ids[1] }).first("output")).output).toBeNull();
  });
});

describe("wakes for other replicas", () => {
  it("another process's LISTEN hears a burst's wakes after the commits: at most one NOTIFY per call, none per row", async () => {
    const other = new pg.Client({ connectionString: f.database.url });
    await other.connect();
    const heard: string[] = [];
    other.on("notification", (m) => heard.push(m.payload ?? ""));
    await other.query("LISTEN stasis_wake");
    try {
      await Promise.all(Array.from({ length: 40 }, (_, i) => f.call("POST", "/api/v1/tasks/noop/trigger", { body: { payload: { i } } })));
      await f.call("POST", "/api/v1/tasks/batch", { body: { items: items(200) } });
      await eventually(async () => heard.filter((p) => p.startsWith("runs|")).length, (n) => n >= 1);
      // 240 runs in 41 calls; calls that commit within the same few milliseconds share one NOTIFY.
      expect(heard.filter((p) => p.startsWith("runs|")).length).toBeLessThanOrEqual(41);
    } finally {
      await other.end();
    }
  });
});
