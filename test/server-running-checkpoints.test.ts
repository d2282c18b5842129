// Checkpoints of running runs at the server: a draining runner's hand-over (EXECUTING → QUEUED with
// the checkpoint, in the same attempt, compare-and-set on the lease) and safety checkpoints (the
// run's checkpoint while it runs; the lease expiry resumes it from there).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploy, eventually, FAKE_SEAL, poll, registerRunner, RUNNER_TOKEN, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
beforeAll(async () => {
  f = await startServerFixture({ leaseMs: 400 });
  await deploy(f, [{ id: "work", retry: { maxAttempts: 3 } }]);
});
afterAll(async () => {
  await f?.close();
});

const view = async (id: string) => (await f.call("GET", `/api/v1/runs/${id}`)).body;
const runner = (path: string, body: unknown) => f.call("POST", `/api/v1/runner/runs/${path}`, { key: RUNNER_TOKEN, body });
const checkpoint = (location: string) => ({ location, sizeBytes: 10, ...FAKE_SEAL });

async function claimOne(name: string) {
  const id = await registerRunner(f, name);
  return { runnerId: id, claim: (await eventually(() => poll(f, id, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0)).runs[0] };
}

describe("checkpoints of running runs", () => {
  it("a hand-over queues the run to resume from its checkpoint in the same attempt; a repeat answers the same, the old lease is fenced off", async () => {
    const trig = await f.call("POST", "/api/v1/tasks/work/trigger", { body: { payload: 1 } });
    const a = await claimOne("leaving");
    const heartbeat = setInterval(() => void f.call("POST", "/api/v1/runner/heartbeat", { key: RUNNER_TOKEN, body: { runnerId: a.runnerId, leases: [{ runId: a.claim.runId, leaseId: a.claim.leaseId }] } }), 100);
    let handed;
    try {
      handed = await runner(`${trig.body.id}/hand-over`, { leaseId: a.claim.leaseId, checkpoint: checkpoint("/ck/drain-1") });
    } finally {
      clearInterval(heartbeat);
    }
    expect(handed.status, JSON.stringify(handed.body)).toBe(200);
    expect(handed.body).toEqual({ status: "QUEUED" });
    const queued = await view(trig.body.id);
    expect(queued.status).toBe("QUEUED");
    expect(queued.attemptDetails.map((x: { status: string }) => x.status)).toEqual(["EXECUTING"]);
    // The answer was lost and the runner asks again: the same answer, nothing changes.
    expect((await runner(`${trig.body.id}/hand-over`, { leaseId: a.claim.leaseId, checkpoint: checkpoint("/ck/drain-1") })).body).toEqual({ status: "QUEUED" });
    // Anything else under the old lease is refused.
    expect((await runner(`${trig.body.id}/complete`, { leaseId: a.claim.leaseId, result: { ok: true, output: 1 } })).status).toBe(409);

    const b = await claimOne("arriving");
    expect(b.claim.attempt).toBe(1);
    expect(b.claim.resume).toEqual({ checkpointLocation: "/ck/drain-1", waitpointId: null, result: null, sha256: FAKE_SEAL.sha256, key: FAKE_SEAL.key });
    const done = await runner(`${trig.body.id}/complete`, { leaseId: b.claim.leaseId, result: { ok: true, output: 2 } });
    expect(done.status).toBe(200);
    const finished = await view(trig.body.id);
    expect(finished.attemptDetails.map((x: { status: string; runnerId: string }) => [x.status, x.runnerId])).toEqual([["COMPLETED", b.runnerId]]);
  });

  it("only an EXECUTING run is handed over: a waiting one is suspended instead", async () => {
    const trig = await f.call("POST", "/api/v1/tasks/work/trigger", { body: { payload: 2 } });
    const a = await claimOne("waits");
    await runner(`${trig.body.id}/waits`, { leaseId: a.claim.leaseId, spec: { kind: "event", event: "never-sent" } });
    const refused = await runner(`${trig.body.id}/hand-over`, { leaseId: a.claim.leaseId, checkpoint: checkpoint("/ck/drain-2") });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("INVALID_TRANSITION");
    await f.call("POST", `/api/v1/runs/${trig.body.id}/cancel`);
  });

  it("a runner that dies after safety checkpoints: the lease expiry resumes the run from the latest one", async () => {
    const trig = await f.call("POST", "/api/v1/tasks/work/trigger", { body: { payload: 3 } });
    const a = await claimOne("dies");
    const first = await runner(`${trig.body.id}/checkpoints`, { leaseId: a.claim.leaseId, checkpoint: checkpoint("/ck/safe-1") });
    expect(first.body).toEqual({ previous: null });
    const second = await runner(`${trig.body.id}/checkpoints`, { leaseId: a.claim.leaseId, checkpoint: checkpoint("/ck/safe-2") });
    expect(second.body).toEqual({ previous: "/ck/safe-1" });
    expect((await view(trig.body.id)).status).toBe("EXECUTING");
    // No heartbeats: the lease expires, and the next attempt starts from the latest safety checkpoint.
    await eventually(() => view(trig.body.id), (v) => v.status === "QUEUED", 5000);
    const b = await claimOne("takes-over");
    expect(b.claim.attempt).toBe(2);
    expect(b.claim.resume).toMatchObject({ checkpointLocation: "/ck/safe-2", waitpointId: null, result: null });
    // A late safety checkpoint under the dead runner's lease is refused.
    expect((await runner(`${trig.body.id}/checkpoints`, { leaseId: a.claim.leaseId, checkpoint: checkpoint("/ck/safe-3") })).status).toBe(409);
    await f.call("POST", `/api/v1/runs/${trig.body.id}/cancel`);
  });
});
