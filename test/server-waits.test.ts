import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { deploy, eventually, FAKE_SEAL, poll, registerRunner, RUNNER_TOKEN, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
let runnerId: string;

beforeAll(async () => {
  f = await startServerFixture();
  await deploy(f, ["parent", "child", "waiter"]);
});
afterAll(async () => {
  await f?.close();
});
beforeEach(async () => {
  runnerId = await registerRunner(f, `r-${Math.random()}`);
});

const runner = (path: string, body: unknown) => f.call("POST", `/api/v1/runner/runs/${path}`, { key: RUNNER_TOKEN, body });
const status = async (id: string) => (await f.call("GET", `/api/v1/runs/${id}`)).body.status as string;

async function startRun(task = "waiter", payload: unknown = {}) {
  const trig = await f.call("POST", `/api/v1/tasks/${task}/trigger`, { body: { payload } });
  const claimed = await eventually(() => poll(f, runnerId, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0);
  expect(claimed.runs[0].runId).toBe(trig.body.id);
  return claimed.runs[0] as { runId: string; leaseId: string; attempt: number };
}

async function nextContinue(runId: string) {
  const p = await eventually(() => poll(f, runnerId, { freeSlots: 0, waitMs: 2000 }), (x) => x.continues.some((c) => c.runId === runId));
  return p.continues.find((c) => c.runId === runId)!;
}

describe("waits", () => {
  it("duration: WAITING until the scheduler completes it, then a continue", async () => {
    const run = await startRun();
    const wait = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, spec: { kind: "duration", ms: 300 } });
    expect(wait.body.result).toBeNull();
    expect(await status(run.runId)).toBe("WAITING");
    const started = Date.now();
    const c = await nextContinue(run.runId);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(c).toMatchObject({ leaseId: run.leaseId, waitpointId: wait.body.waitpointId, result: { kind: "duration" } });
    expect(await status(run.runId)).toBe("EXECUTING");
  });

  it("zero duration and a past date resolve at once and keep EXECUTING", async () => {
    const run = await startRun();
    const zero = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, spec: { kind: "duration", ms: 0 } });
    expect(zero.body.result).toEqual({ kind: "duration" });
    const past = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, spec: { kind: "until", date: "2001-01-01T00:00:00Z" } });
    expect(past.body.result).toEqual({ kind: "duration" });
    expect(await status(run.runId)).toBe("EXECUTING");
  });

  it("events: filter match and non-match, duplicates complete nothing and answer what the first delivery matched", async () => {
    const eur = await startRun();
    const usd = await startRun();
    await runner(`${eur.runId}/waits`, { leaseId: eur.leaseId, spec: { kind: "event", event: "checkout", filter: { cart: { currency: ["EUR"] } } } });
    await runner(`${usd.runId}/waits`, { leaseId: usd.leaseId, spec: { kind: "event", event: "checkout", filter: { cart: { currency: ["USD"] } } } });
    const sent = await f.call("POST", "/api/v1/events", { body: { event: "checkout", payload: { cart: { currency: "EUR" } }, id: "evt-1" } });
    expect(sent.body).toEqual({ id: "evt-1", duplicate: false, matchedWaitpoints: 1 });
    const again = await f.call("POST", "/api/v1/events", { body: { event: "checkout", payload: { cart: { currency: "USD" } }, id: "evt-1" } });
    // A sender whose first answer was lost retries with the same id: it learns the event was delivered.
    expect(again.body).toEqual({ id: "evt-1", duplicate: true, matchedWaitpoints: 1 });
    const c = await nextContinue(eur.runId);
    expect(c.result).toEqual({ kind: "event", id: "evt-1", event: "checkout", payload: { cart: { currency: "EUR" } } });
    expect(await status(usd.runId)).toBe("WAITING");
  });

  it("events: the same id sent several times at once is delivered once; every answer says what it matched", async () => {
    const a = await startRun();
    const b = await startRun();
    await runner(`${a.runId}/waits`, { leaseId: a.leaseId, spec: { kind: "event", event: "race-same-id" } });
    await runner(`${b.runId}/waits`, { leaseId: b.leaseId, spec: { kind: "event", event: "race-same-id" } });
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => f.call("POST", "/api/v1/events", { body: { event: "race-same-id", payload: { try: i }, id: "evt-race" } })));
    expect(answers.map((r) => r.status)).toEqual(Array(6).fill(200));
    expect(answers.filter((r) => !r.body.duplicate)).toHaveLength(1);
    expect(answers.map((r) => r.body.matchedWaitpoints)).toEqual(Array(6).fill(2));
    const delivered = answers.find((r) => !r.body.duplicate)!;
    const payload = (await f.database.db("events").where({ id: "evt-race" }).first("payload")).payload;
    const continues: Array<{ runId: string; result: unknown }> = [];
    await eventually(async () => continues.push(...(await poll(f, runnerId, { freeSlots: 0, waitMs: 1000 })).continues), () => continues.length >= 2);
    expect(continues.map((c) => c.runId).sort()).toEqual([a.runId, b.runId].sort());
    for (const c of continues) expect(c.result).toEqual({ kind: "event", id: "evt-race", event: "race-same-id", payload });
    expect(delivered.body).toEqual({ id: "evt-race", duplicate: false, matchedWaitpoints: 2 });
    expect(await f.database.db("events").where({ id: "evt-race" }).count({ n: "*" })).toEqual([{ n: 1 }]);
  });

  it("event timeout completes with kind timeout", async () => {
    const run = await startRun();
    await runner(`${run.runId}/waits`, { leaseId: run.leaseId, spec: { kind: "event", event: "never", timeoutMs: 200 } });
    const c = await nextContinue(run.runId);
    expect(c.result.kind).toBe("timeout");
  });

  it("request token: a hit before the wait is kept; a second hit is 409", async () => {
    const run = await startRun();
    const tok = await runner(`${run.runId}/request-tokens`, { leaseId: run.leaseId });
    expect(tok.body.url).toBe(`http://127.0.0.1:9999/api/v1/waitpoints/requests/${tok.body.token}`);
    const path = `/api/v1/waitpoints/requests/${tok.body.token}?ok=1`;
    const hit = await f.server.app.inject({ method: "POST", url: path, headers: { "content-type": "application/json", "x-sig": "s" }, payload: JSON.stringify({ approved: true }) });
    expect(hit.statusCode).toBe(200);
    const second = await f.server.app.inject({ method: "POST", url: path, payload: "again" });
    expect(second.statusCode).toBe(409);
    expect(JSON.parse(second.body).error.message).toContain("already completed");
    const unknown = await f.server.app.inject({ method: "GET", url: "/api/v1/waitpoints/requests/nope" });
    expect(unknown.statusCode).toBe(404);
    const wait = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, spec: { kind: "request", token: tok.body.token } });
    expect(wait.body.result).toMatchObject({ kind: "request", request: { method: "POST", body: { approved: true }, query: { ok: "1" }, headers: { "x-sig": "s" } } });
  });

  it("request token: waiting first, then the hit continues the run", async () => {
    const run = await startRun();
    const tok = await runner(`${run.runId}/request-tokens`, { leaseId: run.leaseId, timeoutMs: 60_000 });
    await runner(`${run.runId}/waits`, { leaseId: run.leaseId, spec: { kind: "request", token: tok.body.token } });
    expect(await status(run.runId)).toBe("WAITING");
    await f.server.app.inject({ method: "PUT", url: `/api/v1/waitpoints/requests/${tok.body.token}`, headers: { "content-type": "text/plain" }, payload: "hello" });
    const c = await nextContinue(run.runId);
    expect(c.result).toMatchObject({ kind: "request", request: { method: "PUT", body: "hello" } });
  });

  it("child runs: the parent continues with results in item order on its version", async () => {
    const parent = await startRun("parent");
    const trig = await runner(`${parent.runId}/trigger`, { leaseId: parent.leaseId, wait: true, items: [{ task: "child", payload: 1 }, { task: "child", payload: 2 }] });
    expect(trig.body.runIds).toHaveLength(2);
    const wait = await runner(`${parent.runId}/waits`, { leaseId: parent.leaseId, spec: { kind: "runs", runIds: trig.body.runIds } });
    expect(wait.body.result).toBeNull();
    const claimed = await eventually(() => poll(f, runnerId, { freeSlots: 2, waitMs: 500 }), (p) => p.runs.length === 2);
    const byId = Object.fromEntries(claimed.runs.map((r) => [r.runId, r]));
    const [first, second] = trig.body.runIds;
    await runner(`${second}/complete`, { leaseId: byId[second].leaseId, result: { ok: false, error: { name: "Error", message: "no seats", doNotRetry: true } } });
    expect(await status(parent.runId)).toBe("WAITING");
    await runner(`${first}/complete`, { leaseId: byId[first].leaseId, result: { ok: true, output: "one" } });
    const c = await nextContinue(parent.runId);
    expect(c.result).toEqual({
      kind: "runs",
      results: [
        { ok: true, runId: first, taskId: "child", output: "one" },
        { ok: false, runId: second, taskId: "child", error: { name: "Error", message: "no seats", doNotRetry: true } },
      ],
    });
    const child = await f.call("GET", `/api/v1/runs/${first}`);
    expect(child.body.parentRunId).toBe(parent.runId);
  });

  it("suspend → SUSPENDED; completion → QUEUED with resume for any runner; logs stay in one order", async () => {
    const run = await startRun();
    await runner(`${run.runId}/logs`, { leaseId: run.leaseId, lines: [{ ts: new Date().toISOString(), level: "info", message: "before" }] });
    const wait = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, spec: { kind: "event", event: "go" } });
    const sus = await runner(`${run.runId}/suspend`, { leaseId: run.leaseId, waitpointId: wait.body.waitpointId, checkpoint: { location: "/ckpt/1", sizeBytes: 10, ...FAKE_SEAL } });
    expect(sus.body).toEqual({ status: "SUSPENDED" });
    expect(await status(run.runId)).toBe("SUSPENDED");
    await f.call("POST", "/api/v1/events", { body: { event: "go", payload: { n: 1 } } });
    expect(await status(run.runId)).toBe("QUEUED");
    const other = await registerRunner(f, "other");
    const claimed = await eventually(() => poll(f, other, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0);
    const resumed = claimed.runs[0];
    expect(resumed).toMatchObject({ runId: run.runId, attempt: run.attempt, resume: { checkpointLocation: "/ckpt/1", waitpointId: wait.body.waitpointId, result: { kind: "event", payload: { n: 1 } } } });
    // The checkpoint's digest and key come back only in the resume claim; the database holds the key wrapped, never as sent.
    expect(resumed.resume).toMatchObject({ sha256: FAKE_SEAL.sha256, key: FAKE_SEAL.key });
    const row = await f.database.db("runs").where({ id: run.runId }).first("checkpoint_sha256", "checkpoint_key");
    expect(row.checkpoint_sha256).toBe(FAKE_SEAL.sha256);
    expect(Buffer.from(row.checkpoint_key).includes(Buffer.from(FAKE_SEAL.key, "base64"))).toBe(false);
    await runner(`${run.runId}/logs`, { leaseId: resumed.leaseId, lines: [{ ts: new Date().toISOString(), level: "info", message: "after" }] });
    const logs = await f.call("GET", `/api/v1/runs/${run.runId}/logs`);
    expect(logs.body.data.map((l: { message: string }) => l.message)).toEqual(["before", "after"]);
  });

  it("a checkpoint resumes only on a runner of the workload that took it (neither a process nor a container runner can restore a runc checkpoint)", async () => {
    const register = async (name: string, workload: string) => (await f.call("POST", "/api/v1/runner/register", { key: RUNNER_TOKEN, body: { name, capacity: 4, checkpoints: true, workload } })).body.runnerId as string;
    const runcA = await register("runc-a", "runc");
    const trig = await f.call("POST", "/api/v1/tasks/waiter/trigger", { body: { payload: {} } });
    const claimed = await eventually(() => poll(f, runcA, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0);
    const run = claimed.runs[0] as { runId: string; leaseId: string };
    expect(run.runId).toBe(trig.body.id);
    const wait = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, spec: { kind: "event", event: "runc-go" } });
    await runner(`${run.runId}/suspend`, { leaseId: run.leaseId, waitpointId: wait.body.waitpointId, checkpoint: { location: "/ckpt/runc", sizeBytes: 10, ...FAKE_SEAL } });
    await f.call("POST", "/api/v1/events", { body: { event: "runc-go", payload: 1 } });
    expect(await status(run.runId)).toBe("QUEUED");

    // Process and container runners poll and get nothing of it; a runc runner gets the resume.
    const processRunner = await register("process-b", "process");
    const containerRunner = await register("container-b", "container");
    for (const id of [processRunner, containerRunner, runnerId]) expect((await poll(f, id, { freeSlots: 4, waitMs: 0 })).runs.map((r) => r.runId)).not.toContain(run.runId);
    expect(await status(run.runId)).toBe("QUEUED");
    const runcC = await register("runc-c", "runc");
    const resumed = await eventually(() => poll(f, runcC, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.some((r) => r.runId === run.runId));
    expect(resumed.runs.find((r) => r.runId === run.runId)).toMatchObject({ resume: { checkpointLocation: "/ckpt/runc" } });
  });

  it("suspend after the waitpoint completed goes straight to QUEUED", async () => {
    const run = await startRun();
    const wait = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, spec: { kind: "event", event: "fast" } });
    await f.call("POST", "/api/v1/events", { body: { event: "fast", payload: 1 } });
    const sus = await runner(`${run.runId}/suspend`, { leaseId: run.leaseId, waitpointId: wait.body.waitpointId, checkpoint: { location: "/ckpt/2", sizeBytes: 10, ...FAKE_SEAL } });
    expect(sus.body).toEqual({ status: "QUEUED" });
    const claimed = await eventually(() => poll(f, runnerId, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0);
    expect(claimed.runs[0].resume.checkpointLocation).toBe("/ckpt/2");
  });

  it("cancelling a suspended run hands its checkpoint to a runner to delete", async () => {
    const run = await startRun();
    const wait = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, spec: { kind: "duration", ms: 3_600_000 } });
    await runner(`${run.runId}/suspend`, { leaseId: run.leaseId, waitpointId: wait.body.waitpointId, checkpoint: { location: "/ckpt/3", sizeBytes: 10, ...FAKE_SEAL } });
    const canceled = await f.call("POST", `/api/v1/runs/${run.runId}/cancel`);
    expect(canceled.body.status).toBe("CANCELED");
    const p = await poll(f, runnerId, { freeSlots: 0 });
    expect(p.deleteCheckpoints).toEqual(["/ckpt/3"]);
  });
});
