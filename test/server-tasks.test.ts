// The Tasks page's API: the promoted version's tasks with their settings from its manifest, and
// their recent runs counted by status per time bucket with duration percentiles — one SQL
// statement, an environment's own runs only.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TasksView } from "../schemas/index.ts";
import { ADMIN_TOKEN, deploy, poll, registerRunner, RUNNER_TOKEN, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
const trigger = async (task: string) => {
  const res = await f.call("POST", `/api/v1/tasks/${task}/trigger`, { body: { payload: {} } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.id as string;
};

beforeAll(async () => {
  f = await startServerFixture();
  await deploy(f, [{ id: "hello", retry: { maxAttempts: 5, minTimeoutInMs: 200 }, maxDuration: 60 }, "bye"]);
  await deploy(f, ["hello"], { key: f.keys.staging });
  // Two hello runs claimed and completed, one canceled, one queued; one bye queued; one hello from two days ago.
  const done = [await trigger("hello"), await trigger("hello")];
  const runner = await registerRunner(f);
  const claimed = (await poll(f, runner, { freeSlots: 2 })).runs;
  expect(claimed.map((r) => r.runId).sort()).toEqual([...done].sort());
  for (const run of claimed) {
    const res = await f.call("POST", `/api/v1/runner/runs/${run.runId}/complete`, { key: RUNNER_TOKEN, body: { leaseId: run.leaseId, result: { ok: true, output: null } } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }
  expect((await f.call("POST", `/api/v1/runs/${await trigger("hello")}/cancel`)).status).toBe(200);
  await trigger("hello");
  await trigger("bye");
  const old = await trigger("hello");
  await f.database.db("runs").where({ id: old }).update({ created_at: f.database.db.raw("now() - interval '2 days'") });
});
afterAll(async () => {
  await f?.close();
});

const tasks = async (key: string | null = f.keys.production, query = "") => f.call("GET", `/api/v1/tasks${query}`, { key });

describe("GET /api/v1/tasks", () => {
  it("lists the promoted version's tasks with their settings and counts their recent runs by status", async () => {
    const res = await tasks();
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const view = res.body as TasksView;
    const deployed = (await f.call("GET", "/api/v1/deployments")).body.data.find((d: { promoted: boolean }) => d.promoted);
    expect(view.version).toBe(deployed.version);
    expect(view.tasks.map((t) => t.id)).toEqual(["hello", "bye"]);
    const [hello, bye] = view.tasks;
    expect(hello).toMatchObject({
      retry: { maxAttempts: 5, minTimeoutInMs: 200 },
      machine: { preset: "small-1x", cpu: 0.5, memory: 512 },
      queue: { name: "hello", concurrencyLimit: null },
      maxDurationS: 60,
      trigger: null,
    });
    // The run from two days ago is outside the 24 hour window.
    expect(hello.totals).toEqual({ COMPLETED: 2, CANCELED: 1, QUEUED: 1 });
    expect(bye.totals).toEqual({ QUEUED: 1 });
    expect(hello.buckets).toHaveLength(24);
    expect(view.bucketSeconds).toBe(3600);
    // Every run is recent: all in the last bucket, none in the others.
    expect(hello.buckets[23].counts).toEqual(hello.totals);
    expect(hello.buckets.slice(0, 23).every((b) => Object.keys(b.counts).length === 0 && b.p50Ms === null)).toBe(true);
    // Durations only of finished runs that started: the two completed ones (the canceled one never started).
    expect(hello.p50Ms).not.toBeNull();
    expect(hello.p95Ms!).toBeGreaterThanOrEqual(hello.p50Ms!);
    expect(hello.buckets[23].p50Ms).toBe(hello.p50Ms);
    expect(bye.p50Ms).toBeNull();

    const week = (await tasks(f.keys.production, "?hours=168")).body as TasksView;
    expect(week.bucketSeconds).toBe(7 * 3600);
    // A week reaches the run from two days ago too.
    expect(week.tasks[0].totals).toEqual({ COMPLETED: 2, CANCELED: 1, QUEUED: 2 });
  });

  it("shows an environment only its own tasks and runs; the admin picks one with the header", async () => {
    const staging = (await tasks(f.keys.staging)).body as TasksView;
    expect(staging.tasks.map((t) => [t.id, t.totals])).toEqual([["hello", {}]]);
    const development = (await tasks(f.keys.development)).body as TasksView;
    expect(development).toMatchObject({ version: null, tasks: [] });

    const asAdmin = await f.server.app.inject({ method: "GET", url: "/api/v1/tasks", headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "x-stasis-environment": "demo/production" } });
    expect(asAdmin.statusCode).toBe(200);
    expect(JSON.parse(asAdmin.body).tasks[0].totals).toEqual({ COMPLETED: 2, CANCELED: 1, QUEUED: 1 });
  });

  it("refuses no key, a wrong key, the runner token, an admin without an environment or with one that does not exist, and a bad window", async () => {
    expect((await tasks(null)).status).toBe(401);
    expect((await tasks("sk_production_nope")).status).toBe(401);
    expect((await tasks(RUNNER_TOKEN)).status).toBeOneOf([401, 403]);
    expect((await tasks(ADMIN_TOKEN)).status).toBe(403);
    const missing = await f.server.app.inject({ method: "GET", url: "/api/v1/tasks", headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "x-stasis-environment": "demo/nope" } });
    expect(missing.statusCode).toBe(404);
    const other = await f.server.app.inject({ method: "GET", url: "/api/v1/tasks", headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "x-stasis-environment": "other/production" } });
    expect(other.statusCode).toBe(404);
    for (const query of ["?hours=0", "?hours=721", "?hours=x", "?hours=1.5", "?other=1"]) expect((await tasks(f.keys.production, query)).status, query).toBe(400);
  });
});
