import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase, migrate, SchemaTooNewError } from "../server/index.ts";
import { createTestDatabase } from "./support/db.ts";
import { deploy, eventually, FAKE_SEAL, poll, registerRunner, RUNNER_TOKEN, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
beforeAll(async () => {
  f = await startServerFixture({ leaseMs: 400, pendingVersionTtlMs: 300 });
  await deploy(f, [{ id: "work", retry: { maxAttempts: 2 } }, { id: "slow", maxDuration: 1 }]);
});
afterAll(async () => {
  await f?.close();
});

const view = async (id: string) => (await f.call("GET", `/api/v1/runs/${id}`)).body;
const runner = (path: string, body: unknown) => f.call("POST", `/api/v1/runner/runs/${path}`, { key: RUNNER_TOKEN, body });

describe("recovery and deadlines", () => {
  it("an expired lease is recovered as a new attempt, then FAILED 'runner lost' when attempts are out", async () => {
    const dead = await registerRunner(f, "dead");
    const trig = await f.call("POST", "/api/v1/tasks/work/trigger", { body: { payload: 1 } });
    const first = await eventually(() => poll(f, dead, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0);
    // No heartbeats: the scheduler notices the lease expiring.
    await eventually(() => view(trig.body.id), (v) => v.status === "QUEUED", 5000);
    const late = await runner(`${trig.body.id}/complete`, { leaseId: first.runs[0].leaseId, result: { ok: true, output: 1 } });
    expect(late.status).toBe(409);
    const alive = await registerRunner(f, "alive");
    const second = await eventually(() => poll(f, alive, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0);
    expect(second.runs[0].attempt).toBe(2);
    // Heartbeats keep a lease: the old one is reported lost, the current one kept.
    const hb = await f.call("POST", "/api/v1/runner/heartbeat", { key: RUNNER_TOKEN, body: { runnerId: alive, leases: [{ runId: trig.body.id, leaseId: second.runs[0].leaseId }, { runId: trig.body.id, leaseId: first.runs[0].leaseId }] } });
    expect(hb.body.lost).toEqual([trig.body.id]);
    const failed = await eventually(() => view(trig.body.id), (v) => v.status === "FAILED", 5000);
    expect(failed.error.message).toMatch(/runner lost/);
    expect(failed.attemptDetails.map((a: { status: string }) => a.status)).toEqual(["LOST", "LOST"]);
  });

  it("a lost run with a checkpoint resumes from it", async () => {
    const r1 = await registerRunner(f, "ck1");
    const trig = await f.call("POST", "/api/v1/tasks/work/trigger", { body: { payload: 2 } });
    const claimed = (await eventually(() => poll(f, r1, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0)).runs[0];
    const wait = await runner(`${trig.body.id}/waits`, { leaseId: claimed.leaseId, spec: { kind: "event", event: "ck" } });
    await runner(`${trig.body.id}/suspend`, { leaseId: claimed.leaseId, waitpointId: wait.body.waitpointId, checkpoint: { location: "/ck/a", sizeBytes: 1, ...FAKE_SEAL } });
    await f.call("POST", "/api/v1/events", { body: { event: "ck", payload: "go" } });
    const r2 = await registerRunner(f, "ck2");
    const resumed = (await eventually(() => poll(f, r2, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0)).runs[0];
    expect(resumed.resume.checkpointLocation).toBe("/ck/a");
    // r2 dies while running after the restore: recovered from the same checkpoint as a new attempt.
    await eventually(() => view(trig.body.id), (v) => v.status === "QUEUED", 5000);
    const r3 = await registerRunner(f, "ck3");
    const again = (await eventually(() => poll(f, r3, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0)).runs[0];
    expect(again.attempt).toBe(2);
    expect(again.resume).toMatchObject({ checkpointLocation: "/ck/a", result: { kind: "event", payload: "go" } });
    // r3 dies too: out of attempts, the run FAILS, and nobody will restore that checkpoint again: a runner is told to delete it.
    await eventually(() => view(trig.body.id), (v) => v.status === "FAILED", 5000);
    const r4 = await registerRunner(f, "ck4");
    const told = await eventually(() => poll(f, r4, { freeSlots: 0, waitMs: 200 }), (p) => (p.deleteCheckpoints ?? []).includes("/ck/a"));
    expect(told.deleteCheckpoints).toEqual(["/ck/a"]);
    expect(await f.database.db("runs").where({ id: trig.body.id }).first("checkpoint_location", "checkpoint_key")).toEqual({ checkpoint_location: null, checkpoint_key: null });
  });

  it("release gives runs back as new attempts", async () => {
    const r = await registerRunner(f, "drain");
    const trig = await f.call("POST", "/api/v1/tasks/work/trigger", { body: { payload: 3 } });
    const c = (await eventually(() => poll(f, r, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0)).runs[0];
    const rel = await f.call("POST", "/api/v1/runner/release", { key: RUNNER_TOKEN, body: { runnerId: r, leases: [{ runId: c.runId, leaseId: c.leaseId }] } });
    expect(rel.body.released).toEqual([trig.body.id]);
    expect((await view(trig.body.id)).status).toBe("QUEUED");
    await f.call("POST", `/api/v1/runs/${trig.body.id}/cancel`);
  });

  it("maxDuration times a run out and the runner gets a stop", async () => {
    const r = await registerRunner(f, "slowpoke");
    const trig = await f.call("POST", "/api/v1/tasks/slow/trigger", { body: { payload: 1 } });
    const c = (await eventually(() => poll(f, r, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0)).runs[0];
    expect(c.deadline).not.toBeNull();
    const hb = setInterval(() => void f.call("POST", "/api/v1/runner/heartbeat", { key: RUNNER_TOKEN, body: { runnerId: r, leases: [{ runId: c.runId, leaseId: c.leaseId }] } }), 100);
    try {
      const stop = await eventually(() => poll(f, r, { freeSlots: 0, waitMs: 1000 }), (p) => p.stops.length > 0, 5000);
      expect(stop.stops[0].runId).toBe(trig.body.id);
      expect(stop.stops[0].reason).toMatch(/maxDuration/);
    } finally {
      clearInterval(hb);
    }
    expect((await view(trig.body.id)).status).toBe("TIMED_OUT");
  });

  it("PENDING_VERSION runs expire after their TTL", async () => {
    const trig = await f.call("POST", "/api/v1/tasks/x/trigger", { key: f.keys.staging, body: { payload: 1 } });
    const expired = await eventually(() => f.call("GET", `/api/v1/runs/${trig.body.id}`, { key: f.keys.staging }), (r) => r.body.status === "EXPIRED", 5000);
    expect(expired.body.error.message).toContain("task x");
  });

  it("refuses to start against a schema newer than the code", async () => {
    await f.database.db("stasis_migrations").insert({ id: 999, name: "from-the-future" });
    const db = connectDatabase(f.database.url);
    try {
      await expect(migrate(db)).rejects.toBeInstanceOf(SchemaTooNewError);
      await expect(migrate(db)).rejects.toThrow(/newer schema/);
    } finally {
      await db.destroy();
      await f.database.db("stasis_migrations").where({ id: 999 }).del();
    }
  });
});

describe("a server that starts after an outage", () => {
  it("gives live leases one more lease period: a runner that kept retrying its end report is heard, the run is not re-run", async () => {
    const database = await createTestDatabase();
    const before = await startServerFixture({ leaseMs: 2000 }, database);
    await deploy(before, ["work"]);
    const runnerId = await registerRunner(before, "outlived-the-server");
    const trig = await before.call("POST", "/api/v1/tasks/work/trigger", { body: { payload: 1 } });
    const claimed = (await eventually(() => poll(before, runnerId, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0)).runs[0];
    await before.server.close();
    // The server was down for longer than a lease: by the clock, the lease ran out meanwhile.
    await database.db("runs").where({ id: trig.body.id }).update({ lease_expires_at: database.db.raw("now() - interval '10 seconds'") });

    const after = await startServerFixture({ leaseMs: 2000 }, database);
    try {
      // The runner comes back within a lease period of the new start and reports the end it held.
      const done = await after.call("POST", `/api/v1/runner/runs/${trig.body.id}/complete`, { key: RUNNER_TOKEN, body: { leaseId: claimed.leaseId, result: { ok: true, output: "once" } } });
      expect(done.status, JSON.stringify(done.body)).toBe(200);
      const run = (await after.call("GET", `/api/v1/runs/${trig.body.id}`, { key: before.keys.production })).body;
      expect(run).toMatchObject({ status: "COMPLETED", output: "once", attempts: 1 });
    } finally {
      await after.close();
    }
  });

  it("still recovers a run whose runner does not come back, one lease period after the start", async () => {
    const database = await createTestDatabase();
    const before = await startServerFixture({ leaseMs: 1000 }, database);
    await deploy(before, [{ id: "work", retry: { maxAttempts: 3 } }]);
    const runnerId = await registerRunner(before, "gone-for-good");
    const trig = await before.call("POST", "/api/v1/tasks/work/trigger", { body: { payload: 1 } });
    await eventually(() => poll(before, runnerId, { freeSlots: 1, waitMs: 500 }), (p) => p.runs.length > 0);
    await before.server.close();
    await database.db("runs").where({ id: trig.body.id }).update({ lease_expires_at: database.db.raw("now() - interval '10 seconds'") });

    const after = await startServerFixture({ leaseMs: 1000 }, database);
    try {
      const run = await eventually(() => after.call("GET", `/api/v1/runs/${trig.body.id}`, { key: before.keys.production }), (r) => r.body.status === "QUEUED", 10_000);
      expect(run.body.attemptDetails.map((a: { status: string }) => a.status)).toEqual(["LOST"]);
    } finally {
      await after.close();
    }
  });
});
