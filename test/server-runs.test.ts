import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploy, eventually, poll, registerRunner, RUNNER_TOKEN, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
beforeAll(async () => {
  f = await startServerFixture();
});
afterAll(async () => {
  await f?.close();
});

describe("trigger → claim → complete", () => {
  it("runs a task to completion and keeps its logs in order", async () => {
    await deploy(f, ["hello", { id: "flaky", retry: { maxAttempts: 2, minTimeoutInMs: 200, factor: 2 } }]);
    const runnerId = await registerRunner(f);
    const trig = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: { name: "Ada" }, options: { tags: ["t1"] } } });
    expect(trig.status).toBe(200);
    expect(trig.body.isCached).toBe(false);

    const { runs } = await poll(f, runnerId, { waitMs: 2000 });
    expect(runs).toHaveLength(1);
    const claimed = runs[0];
    expect(claimed).toMatchObject({ runId: trig.body.id, attempt: 1, taskId: "hello", payload: { name: "Ada" }, environment: "production", project: "demo" });
    expect(claimed.deployment.version).toMatch(/^\d{8}\.1$/);

    const logs = await f.call("POST", `/api/v1/runner/runs/${claimed.runId}/logs`, {
      key: RUNNER_TOKEN,
      body: { leaseId: claimed.leaseId, lines: [{ ts: new Date().toISOString(), level: "info", message: "one" }, { ts: new Date().toISOString(), level: "warn", message: "two" }] },
    });
    expect(logs.status).toBe(200);
    const done = await f.call("POST", `/api/v1/runner/runs/${claimed.runId}/complete`, { key: RUNNER_TOKEN, body: { leaseId: claimed.leaseId, result: { ok: true, output: { greeting: "hi Ada" } } } });
    expect(done.body).toEqual({ status: "COMPLETED", retryAt: null });

    const view = await f.call("GET", `/api/v1/runs/${claimed.runId}`);
    expect(view.body).toMatchObject({ status: "COMPLETED", output: { greeting: "hi Ada" }, attempts: 1, tags: ["t1"], version: claimed.deployment.version });
    expect(view.body.attemptDetails).toHaveLength(1);
    const read = await f.call("GET", `/api/v1/runs/${claimed.runId}/logs`);
    expect(read.body.data.map((l: { message: string }) => l.message)).toEqual(["one", "two"]);
    expect(read.body.runFinished).toBe(true);
  });

  it("retries with backoff and fails after max attempts, storing the error", async () => {
    const runnerId = await registerRunner(f, "r-retry");
    const trig = await f.call("POST", "/api/v1/tasks/flaky/trigger", { body: { payload: 1 } });
    const first = (await poll(f, runnerId, { waitMs: 2000 })).runs[0];
    const error = { name: "TypeError", message: "boom", stack: "TypeError: boom\n    at run" };
    const r1 = await f.call("POST", `/api/v1/runner/runs/${first.runId}/complete`, { key: RUNNER_TOKEN, body: { leaseId: first.leaseId, result: { ok: false, error } } });
    expect(r1.body.status).toBe("RETRYING");
    const delay = new Date(r1.body.retryAt).getTime() - Date.now();
    expect(delay).toBeGreaterThan(0);
    expect(delay).toBeLessThanOrEqual(200);
    // Not claimable before its backoff; the scheduler wakes the poll when it is.
    const second = await eventually(() => poll(f, runnerId, { waitMs: 1000 }), (p) => p.runs.length === 1);
    expect(second.runs[0].attempt).toBe(2);
    const r2 = await f.call("POST", `/api/v1/runner/runs/${trig.body.id}/complete`, { key: RUNNER_TOKEN, body: { leaseId: second.runs[0].leaseId, result: { ok: false, error } } });
    expect(r2.body.status).toBe("FAILED");
    const view = await f.call("GET", `/api/v1/runs/${trig.body.id}`);
    expect(view.body).toMatchObject({ status: "FAILED", attempts: 2, error: { name: "TypeError", message: "boom", stack: error.stack } });
    expect(view.body.attemptDetails.map((a: { status: string }) => a.status)).toEqual(["FAILED", "FAILED"]);
  });

  it("doNotRetry fails at once; an old lease is refused", async () => {
    const runnerId = await registerRunner(f, "r-dnr");
    const trig = await f.call("POST", "/api/v1/tasks/flaky/trigger", { body: { payload: 2 } });
    const claimed = (await poll(f, runnerId, { waitMs: 2000 })).runs[0];
    const stale = await f.call("POST", `/api/v1/runner/runs/${trig.body.id}/complete`, { key: RUNNER_TOKEN, body: { leaseId: "lease_wrong", result: { ok: true, output: 1 } } });
    expect(stale.status).toBe(409);
    expect(stale.body.error.message).toContain("lease lost");
    const r = await f.call("POST", `/api/v1/runner/runs/${trig.body.id}/complete`, { key: RUNNER_TOKEN, body: { leaseId: claimed.leaseId, result: { ok: false, error: { name: "AbortTaskRunError", message: "no", doNotRetry: true } } } });
    expect(r.body.status).toBe("FAILED");
  });

  it("idempotency keys return the existing run", async () => {
    const a = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: 1, options: { idempotencyKey: "k1" } } });
    const b = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: 2, options: { idempotencyKey: "k1" } } });
    expect(b.body).toEqual({ id: a.body.id, isCached: true });
    const other = await f.call("POST", "/api/v1/tasks/flaky/trigger", { body: { payload: 1, options: { idempotencyKey: "k1" } } });
    expect(other.body.id).not.toBe(a.body.id);
  });

  it("delay makes a DELAYED run that is claimable later", async () => {
    const runnerId = await registerRunner(f, "r-delay");
    await poll(f, runnerId, { freeSlots: 50 }); // drain anything queued by earlier tests
    const trig = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: 1, options: { delay: "300ms" } } });
    const view = await f.call("GET", `/api/v1/runs/${trig.body.id}`);
    expect(view.body.status).toBe("DELAYED");
    expect(view.body.availableAt).not.toBeNull();
    expect((await poll(f, runnerId)).runs.find((r) => r.runId === trig.body.id)).toBeUndefined();
    const later = await eventually(() => poll(f, runnerId, { waitMs: 1000 }), (p) => p.runs.some((r) => r.runId === trig.body.id));
    expect(later.runs.length).toBeGreaterThan(0);
  });

  it("cancel stops a run on its runner; replay makes a new run with the same payload", async () => {
    const runnerId = await registerRunner(f, "r-cancel");
    const trig = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: { n: 7 } } });
    const claimed = await eventually(() => poll(f, runnerId, { waitMs: 500 }), (p) => p.runs.some((r) => r.runId === trig.body.id));
    expect(claimed.runs.length).toBeGreaterThan(0);
    const canceled = await f.call("POST", `/api/v1/runs/${trig.body.id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe("CANCELED");
    const stops = await poll(f, runnerId, { freeSlots: 0 });
    expect(stops.stops).toEqual([{ runId: trig.body.id, reason: "canceled" }]);
    const again = await f.call("POST", `/api/v1/runs/${trig.body.id}/cancel`);
    expect(again.status).toBe(409);

    const replay = await f.call("POST", `/api/v1/runs/${trig.body.id}/replay`, { body: {} });
    expect(replay.status).toBe(200);
    const view = await f.call("GET", `/api/v1/runs/${replay.body.id}`);
    expect(view.body).toMatchObject({ replayOf: trig.body.id, payload: { n: 7 }, status: "QUEUED", taskId: "hello" });
  });

  it("lists runs newest first with a cursor", async () => {
    const page1 = await f.call("GET", "/api/v1/runs?limit=2&task=hello");
    expect(page1.body.data).toHaveLength(2);
    const page2 = await f.call("GET", `/api/v1/runs?limit=2&task=hello&cursor=${page1.body.nextCursor}`);
    expect(page2.body.data[0].id).not.toBe(page1.body.data[1].id);
    expect(new Date(page2.body.data[0].createdAt).getTime()).toBeLessThanOrEqual(new Date(page1.body.data[1].createdAt).getTime());
  });
});

describe("batch, log follow, cancel cascade", () => {
  it("batch triggers all items, or none when one is bad", async () => {
    const before = await f.database.db("runs").count<{ count: string }[]>("* as count");
    const bad = await f.call("POST", "/api/v1/tasks/batch", { body: { items: [{ task: "hello", payload: 1 }, { task: "missing", payload: 2 }] } });
    expect(bad.status).toBe(404);
    expect(bad.body.error.message).toContain("missing");
    const after = await f.database.db("runs").count<{ count: string }[]>("* as count");
    expect(after[0].count).toBe(before[0].count);
    const ok = await f.call("POST", "/api/v1/tasks/batch", { body: { items: [{ task: "hello", payload: 1 }, { task: "flaky", payload: 2 }] } });
    expect(ok.body.runs).toHaveLength(2);
  });

  it("logs?waitMs long-polls until a new line arrives", async () => {
    const runnerId = await registerRunner(f, "r-follow");
    await poll(f, runnerId, { freeSlots: 50 });
    const trig = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: 1 } });
    const claimed = (await eventually(() => poll(f, runnerId, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0)).runs[0];
    const started = Date.now();
    const follow = f.call("GET", `/api/v1/runs/${trig.body.id}/logs?after=0&waitMs=10000`);
    await f.call("POST", `/api/v1/runner/runs/${claimed.runId}/logs`, { key: RUNNER_TOKEN, body: { leaseId: claimed.leaseId, lines: [{ ts: new Date().toISOString(), level: "info", message: "late line" }] } });
    const got = await follow;
    expect(got.body.data.map((l: { message: string }) => l.message)).toEqual(["late line"]);
    expect(got.body.next).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("cancelling a parent cancels its waiting children", async () => {
    const runnerId = await registerRunner(f, "r-cascade");
    await poll(f, runnerId, { freeSlots: 50 });
    const trig = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: 1 } });
    const parent = (await eventually(() => poll(f, runnerId, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0)).runs[0];
    const kids = await f.call("POST", `/api/v1/runner/runs/${parent.runId}/trigger`, { key: RUNNER_TOKEN, body: { leaseId: parent.leaseId, wait: true, items: [{ task: "hello", payload: 2 }] } });
    await f.call("POST", `/api/v1/runner/runs/${parent.runId}/waits`, { key: RUNNER_TOKEN, body: { leaseId: parent.leaseId, spec: { kind: "runs", runIds: kids.body.runIds } } });
    await f.call("POST", `/api/v1/runs/${trig.body.id}/cancel`);
    const child = await f.call("GET", `/api/v1/runs/${kids.body.runIds[0]}`);
    expect(child.body.status).toBe("CANCELED");
  });
});

describe("triggers that arrive together", () => {
  it("each gets its own answer when they go into the database together: new runs, one run per idempotency key, and 404 for an unknown task", async () => {
    await deploy(f, ["hello", "flaky"]);
    const call = (task: string, body: Record<string, unknown>) => f.call("POST", `/api/v1/tasks/${task}/trigger`, { body });
    const [plain, keyed, unknown, otherTask] = await Promise.all([
      Promise.all(Array.from({ length: 30 }, (_, i) => call("hello", { payload: { i } }))),
      Promise.all(Array.from({ length: 20 }, (_, i) => call("hello", { payload: { i }, options: { idempotencyKey: "together" } }))),
      Promise.all(Array.from({ length: 5 }, () => call("nope", { payload: 1 }))),
      Promise.all(Array.from({ length: 5 }, (_, i) => call("flaky", { payload: { i }, options: { tags: ["together"] } }))),
    ]);
    expect(plain.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(new Set(plain.map((r) => r.body.id)).size).toBe(30);
    const views = await Promise.all(plain.map((r) => f.call("GET", `/api/v1/runs/${r.body.id}`)));
    expect(views.map((v) => v.body.payload)).toEqual(plain.map((_, i) => ({ i })));

    // One run for the key: exactly one answer made it, every other answer names it.
    expect(new Set(keyed.map((r) => r.body.id)).size).toBe(1);
    expect(keyed.filter((r) => r.body.isCached === false)).toHaveLength(1);
    expect(await f.database.db("runs").where({ idempotency_key: "together" }).count({ n: "*" }).first().then((r) => Number(r?.n))).toBe(1);

    expect(unknown.map((r) => r.status)).toEqual(Array(5).fill(404));
    expect(unknown[0].body.error.message).toContain("nope");
    const flaky = await Promise.all(otherTask.map((r) => f.call("GET", `/api/v1/runs/${r.body.id}`)));
    expect(flaky.map((v) => [v.body.taskId, v.body.tags])).toEqual(Array(5).fill(["flaky", ["together"]]));
  });
});
