// Keyed waits: a wait a run reaches again (an attempt re-executing code after its runner was lost)
// gets the waitpoint it created before, with whatever was delivered to it meanwhile.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploy, eventually, poll, registerRunner, RUNNER_TOKEN, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
beforeAll(async () => {
  f = await startServerFixture({ leaseMs: 1500 });
  await deploy(f, [{ id: "waiter", retry: { maxAttempts: 5 } }]);
});
afterAll(async () => {
  await f?.close();
});

const runner = (path: string, body: unknown) => f.call("POST", `/api/v1/runner/runs/${path}`, { key: RUNNER_TOKEN, body });
const view = async (id: string) => (await f.call("GET", `/api/v1/runs/${id}`)).body;
const pendingWaitpoints = (runId: string) => f.database.db("waitpoints").where({ run_id: runId, status: "PENDING" }).pluck("id");

async function claim(runnerId: string, runId: string) {
  const p = await eventually(() => poll(f, runnerId, { freeSlots: 1, waitMs: 500 }), (x) => x.runs.some((r) => r.runId === runId));
  return p.runs.find((r) => r.runId === runId) as { runId: string; leaseId: string; attempt: number };
}

async function start() {
  const r = await registerRunner(f, `r-${Math.random()}`);
  const trig = await f.call("POST", "/api/v1/tasks/waiter/trigger", { body: { payload: {} } });
  return { runnerId: r, run: await claim(r, trig.body.id) };
}

/** The runner gives the run back: the attempt is LOST and the run QUEUED for a new one. */
async function release(runnerId: string, run: { runId: string; leaseId: string }) {
  const res = await f.call("POST", "/api/v1/runner/release", { key: RUNNER_TOKEN, body: { runnerId, leases: [{ runId: run.runId, leaseId: run.leaseId }] } });
  expect(res.body.released).toEqual([run.runId]);
}

describe("keyed waits", () => {
  it("a second createWait with the same key returns the completed result, not a new wait", async () => {
    const { runnerId, run } = await start();
    const first = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, key: "#1", spec: { kind: "duration", ms: 200 } });
    expect(first.body.result).toBeNull();
    await eventually(() => poll(f, runnerId, { freeSlots: 0, waitMs: 1000 }), (p) => p.continues.some((c) => c.runId === run.runId));
    const again = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, key: "#1", spec: { kind: "duration", ms: 200 } });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ waitpointId: first.body.waitpointId, result: { kind: "duration" } });
    expect((await view(run.runId)).status).toBe("EXECUTING");
  });

  it("an event sent while the run is between attempts completes the kept waitpoint; the next attempt gets it at once", async () => {
    const { runnerId, run } = await start();
    const spec = { kind: "event", event: "between", filter: { n: [1] } };
    const first = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, key: "#1", spec });
    await release(runnerId, run);
    expect((await view(run.runId)).status).toBe("QUEUED");
    expect(await pendingWaitpoints(run.runId)).toEqual([first.body.waitpointId]);

    const sent = await f.call("POST", "/api/v1/events", { body: { event: "between", payload: { n: 1, hello: "world" } } });
    expect(sent.body.matchedWaitpoints).toBe(1);
    const again = await f.call("POST", "/api/v1/events", { body: { event: "between", payload: { n: 1, hello: "twice" } } });
    expect(again.body.matchedWaitpoints).toBe(0);

    const second = await claim(await registerRunner(f, "second"), run.runId);
    expect(second.attempt).toBe(2);
    const reached = await runner(`${run.runId}/waits`, { leaseId: second.leaseId, key: "#1", spec });
    expect(reached.body).toEqual({ waitpointId: first.body.waitpointId, result: { kind: "event", id: sent.body.id, event: "between", payload: { n: 1, hello: "world" } } });
    expect(await pendingWaitpoints(run.runId)).toEqual([]);
  });

  it("an event accepted while the runner was already dead (lease not yet expired) reaches the recovered attempt", async () => {
    const { run } = await start();
    const spec = { kind: "event", event: "dead-runner" };
    await runner(`${run.runId}/waits`, { leaseId: run.leaseId, key: "#1", spec });
    expect((await f.call("POST", "/api/v1/events", { body: { event: "dead-runner", payload: "kept" } })).body.matchedWaitpoints).toBe(1);
    // No heartbeats: the lease expires and the run is queued as a new attempt, from the start.
    await eventually(() => view(run.runId), (v) => v.status === "QUEUED", 10_000);
    const second = await claim(await registerRunner(f, "recovers"), run.runId);
    const reached = await runner(`${run.runId}/waits`, { leaseId: second.leaseId, key: "#1", spec });
    expect(reached.body.result).toMatchObject({ kind: "event", payload: "kept" });
    expect((await view(run.runId)).status).toBe("EXECUTING");
  });

  it("a PENDING duration reached again keeps its first deadline and the run waits on it", async () => {
    const { runnerId, run } = await start();
    const first = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, key: "#1", spec: { kind: "duration", ms: 60_000 } });
    await release(runnerId, run);
    const r2 = await registerRunner(f, "dur2");
    const second = await claim(r2, run.runId);
    const reached = await runner(`${run.runId}/waits`, { leaseId: second.leaseId, key: "#1", spec: { kind: "duration", ms: 60_000 } });
    expect(reached.body).toEqual({ waitpointId: first.body.waitpointId, result: null });
    expect((await view(run.runId)).status).toBe("WAITING");
    expect(await pendingWaitpoints(run.runId)).toEqual([first.body.waitpointId]);
  });

  it("a wait reached again with a different spec starts a new wait and says so in the run log", async () => {
    const { runnerId, run } = await start();
    const first = await runner(`${run.runId}/waits`, { leaseId: run.leaseId, key: "#1", spec: { kind: "event", event: "old-name" } });
    await release(runnerId, run);
    const second = await claim(await registerRunner(f, "changed"), run.runId);
    const reached = await runner(`${run.runId}/waits`, { leaseId: second.leaseId, key: "#1", spec: { kind: "event", event: "new-name" } });
    expect(reached.body.waitpointId).not.toBe(first.body.waitpointId);
    expect(reached.body.result).toBeNull();
    expect(await pendingWaitpoints(run.runId)).toEqual([reached.body.waitpointId]);
    expect((await f.call("POST", "/api/v1/events", { body: { event: "old-name", payload: 1 } })).body.matchedWaitpoints).toBe(0);
    const logs = (await f.call("GET", `/api/v1/runs/${run.runId}/logs`)).body.data as Array<{ level: string; message: string }>;
    expect(logs.find((l) => l.message.includes("wait #1"))).toMatchObject({ level: "warn" });
    expect(logs.find((l) => l.message.includes("wait #1"))!.message).toMatch(/event "old-name".*event "new-name".*new wait begins/);
  });

  it("wait.forRequest reached again: a new URL for the same waitpoint, and the first URL still works", async () => {
    const { runnerId, run } = await start();
    const a = await runner(`${run.runId}/request-tokens`, { leaseId: run.leaseId, key: "#1" });
    await release(runnerId, run);
    const second = await claim(await registerRunner(f, "req2"), run.runId);
    const b = await runner(`${run.runId}/request-tokens`, { leaseId: second.leaseId, key: "#1" });
    expect(b.body.token).not.toBe(a.body.token);
    const hit = await f.call("POST", `/api/v1/waitpoints/requests/${a.body.token}`, { key: null, body: { paid: true } });
    expect(hit.status).toBe(200);
    const waited = await runner(`${run.runId}/waits`, { leaseId: second.leaseId, key: "#1", spec: { kind: "request", token: b.body.token } });
    expect(waited.body.waitpointId).toBe(hit.body.waitpointId);
    expect(waited.body.result).toMatchObject({ kind: "request", request: { method: "POST", body: { paid: true } } });
    expect((await f.call("POST", `/api/v1/waitpoints/requests/${b.body.token}`, { key: null, body: {} })).status).toBe(409);
  });

  it("a run that ends cancels the waits it left PENDING: their events match nothing", async () => {
    const { runnerId, run } = await start();
    await runner(`${run.runId}/waits`, { leaseId: run.leaseId, key: "#1", spec: { kind: "event", event: "left-behind" } });
    await release(runnerId, run);
    const second = await claim(await registerRunner(f, "ends"), run.runId);
    const done = await runner(`${run.runId}/complete`, { leaseId: second.leaseId, result: { ok: true, output: 1 } });
    expect(done.status).toBe(200);
    expect(await pendingWaitpoints(run.runId)).toEqual([]);
    expect((await f.call("POST", "/api/v1/events", { body: { event: "left-behind", payload: 1 } })).body.matchedWaitpoints).toBe(0);
  });
});
