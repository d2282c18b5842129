// Cron schedules against a real PostgreSQL with two server replicas sharing it and one fake clock:
// each tick starts exactly one run, none after a deactivation, one catch-up run after downtime, and
// daylight-saving days follow croner. The clock moves only when the test says; no sleeps.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Clock } from "../server/engine/context.ts";
import { createKeyring, createServer, ensureProject, parseMasterKey, type StasisServer } from "../server/index.ts";
import { createTestDatabase, type TestDatabase } from "./support/db.ts";
import { ADMIN_TOKEN, DIGEST, manifest, RUNNER_TOKEN, TEST_MASTER_KEY, type TaskSpec } from "./support/server-fixture.ts";

class FakeClock implements Clock {
  constructor(private t: number) {}
  now() {
    return new Date(this.t);
  }
  set(iso: string) {
    this.t = Date.parse(iso);
  }
}

let database: TestDatabase;
let keys: Record<string, string>;
const clock = new FakeClock(Date.parse("2026-06-01T10:00:30Z"));
let replicas: StasisServer[] = [];

const startReplica = () => createServer({ db: database.db, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, logger: false, keyring: createKeyring(parseMasterKey(TEST_MASTER_KEY)), clock });

async function call(method: string, url: string, body?: unknown, server = replicas[0]!): Promise<{ status: number; body: any }> {
  const res = await server.app.inject({ method: method as "GET", url, headers: { authorization: `Bearer ${keys.production}` }, ...(body !== undefined ? { payload: body as object } : {}) });
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
}

async function deploy(tasks: Array<string | TaskSpec>) {
  const res = await call("POST", "/api/v1/deployments", { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(tasks), promote: true });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

/** Every replica sweeps, three times each, all at once: the most a tick can be raced. */
async function sweepEverywhere() {
  await Promise.all(replicas.flatMap((r) => [r.scheduler.tick(), r.scheduler.tick(), r.scheduler.tick()]));
}

async function runsOf(task: string): Promise<Array<{ id: string; payload: any; idempotencyKey: string }>> {
  const res = await call("GET", `/api/v1/runs?task=${task}&limit=200`);
  expect(res.status).toBe(200);
  return res.body.data.reverse();
}

beforeAll(async () => {
  database = await createTestDatabase();
  replicas = [await startReplica(), await startReplica()];
  const project = await ensureProject(database.db, { slug: "demo" });
  keys = Object.fromEntries(project.keys.map((k) => [k.environment, k.apiKey]));
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.close()));
  await database?.drop();
});

describe("declarative schedules", () => {
  it("two replicas on one database start exactly one run per tick, with the tick's payload", async () => {
    await deploy(["plain", { id: "every-minute", schedule: { cron: "* * * * *", timezone: "UTC" } }]);
    await sweepEverywhere();
    const listed = await call("GET", "/api/v1/schedules");
    expect(listed.body.data).toMatchObject([{ task: "every-minute", type: "DECLARATIVE", cron: "* * * * *", timezone: "UTC", active: true, nextRun: "2026-06-01T10:01:00.000Z" }]);
    expect(await runsOf("every-minute")).toEqual([]);

    for (let minute = 1; minute <= 5; minute++) {
      clock.set(`2026-06-01T10:0${minute}:00Z`);
      await sweepEverywhere();
      clock.set(`2026-06-01T10:0${minute}:40Z`);
      await sweepEverywhere();
    }
    const runs = await runsOf("every-minute");
    expect(runs.map((r) => r.payload.timestamp)).toEqual([1, 2, 3, 4, 5].map((m) => `2026-06-01T10:0${m}:00.000Z`));
    expect(runs[0]!.payload).toEqual({
      scheduleId: listed.body.data[0].id,
      type: "DECLARATIVE",
      timestamp: "2026-06-01T10:01:00.000Z",
      lastTimestamp: null,
      timezone: "UTC",
      upcoming: [2, 3, 4, 5, 6].map((m) => `2026-06-01T10:0${m}:00.000Z`),
      externalId: null,
    });
    expect(runs[4]!.payload.lastTimestamp).toBe("2026-06-01T10:04:00.000Z");
    expect(runs[0]!.idempotencyKey).toBe(`schedule/${listed.body.data[0].id}/2026-06-01T10:01:00.000Z`);
    const ticks = await database.db("schedule_ticks").count<{ count: string }[]>("* as count");
    expect(Number(ticks[0]!.count)).toBe(5);
    // A replica that read the schedule before another moved it on finds that tick due again: its row stops it.
    await database.db("schedules").update({ next_run_at: new Date("2026-06-01T10:05:00Z") });
    await sweepEverywhere();
    expect(await runsOf("every-minute")).toHaveLength(5);
  });

  it("after downtime, only the latest missed tick runs, once (the catch-up rule)", async () => {
    await Promise.all(replicas.map((r) => r.close()));
    clock.set("2026-06-01T10:17:20Z"); // down from 10:05:40 to 10:17:20: ticks 10:06 … 10:17 missed
    replicas = [await startReplica(), await startReplica()];
    await sweepEverywhere();
    await sweepEverywhere();
    const runs = await runsOf("every-minute");
    expect(runs.map((r) => r.payload.timestamp).slice(5)).toEqual(["2026-06-01T10:17:00.000Z"]);
    expect(runs[5]!.payload.lastTimestamp).toBe("2026-06-01T10:05:00.000Z");
    const [schedule] = (await call("GET", "/api/v1/schedules")).body.data;
    expect(schedule.nextRun).toBe("2026-06-01T10:18:00.000Z");
  });

  it("none after deactivation; activation starts again at the next tick without catching up", async () => {
    const [schedule] = (await call("GET", "/api/v1/schedules")).body.data;
    const off = await call("POST", `/api/v1/schedules/${schedule.id}/deactivate`, {}, replicas[1]);
    expect(off.body).toMatchObject({ active: false, nextRun: null });
    for (const at of ["10:18:00", "10:19:00", "10:25:00"]) {
      clock.set(`2026-06-01T${at}Z`);
      await sweepEverywhere();
    }
    expect(await runsOf("every-minute")).toHaveLength(6);
    const on = await call("POST", `/api/v1/schedules/${schedule.id}/activate`, {});
    expect(on.body).toMatchObject({ active: true, nextRun: "2026-06-01T10:26:00.000Z" });
    clock.set("2026-06-01T10:26:00Z");
    await sweepEverywhere();
    expect((await runsOf("every-minute")).map((r) => r.payload.timestamp).slice(6)).toEqual(["2026-06-01T10:26:00.000Z"]);
  });

  it("a deploy that no longer declares the schedule stops it; declarative schedules refuse update and delete", async () => {
    const [schedule] = (await call("GET", "/api/v1/schedules")).body.data;
    const update = await call("PUT", `/api/v1/schedules/${schedule.id}`, { cron: "*/5 * * * *" });
    expect(update.status).toBe(409);
    expect(update.body.error.code).toBe("SCHEDULE_DECLARATIVE");
    expect((await call("DELETE", `/api/v1/schedules/${schedule.id}`)).status).toBe(409);

    await deploy(["plain", "every-minute"]);
    expect((await call("GET", "/api/v1/schedules")).body.data).toEqual([]);
    clock.set("2026-06-01T10:30:00Z");
    await sweepEverywhere();
    expect(await runsOf("every-minute")).toHaveLength(7);
  });

  it("a bad cron or time zone in a manifest is refused naming the field, and nothing is deployed", async () => {
    const before = await database.db("deployments").count<{ count: string }[]>("* as count");
    for (const [schedule, field] of [
      [{ cron: "61 * * * *", timezone: "UTC" }, "manifest.tasks.0.schedule.cron"],
      [{ cron: "* * * * *", timezone: "Mars/Olympus" }, "manifest.tasks.0.schedule.timezone"],
    ] as const) {
      const res = await call("POST", "/api/v1/deployments", { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest([{ id: "bad", schedule }]), promote: true });
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe(field);
      expect(res.body.error.message).toContain(field);
    }
    const after = await database.db("deployments").count<{ count: string }[]>("* as count");
    expect(after[0]!.count).toBe(before[0]!.count);
  });
});

describe("imperative schedules", () => {
  it("create with externalId and deduplicationKey, list with the next run, update, delete", async () => {
    clock.set("2026-06-02T08:00:00Z");
    const body = { task: "plain", cron: "0 9 * * 1-5", timezone: "Europe/Paris", externalId: "user-42", deduplicationKey: "report-user-42" };
    const first = await call("POST", "/api/v1/schedules", body);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ type: "IMPERATIVE", task: "plain", externalId: "user-42", nextRun: "2026-06-03T07:00:00.000Z" });
    const again = await call("POST", "/api/v1/schedules", { ...body, cron: "0 10 * * 1-5" });
    expect(again.body.id).toBe(first.body.id);
    expect(again.body.nextRun).toBe("2026-06-03T08:00:00.000Z");
    expect((await call("GET", "/api/v1/schedules")).body.data.map((s: { id: string }) => s.id)).toEqual([first.body.id]);

    clock.set("2026-06-03T08:00:00Z");
    await sweepEverywhere();
    const runs = (await runsOf("plain")).filter((r) => r.payload?.scheduleId === first.body.id);
    expect(runs.map((r) => r.payload)).toEqual([expect.objectContaining({ type: "IMPERATIVE", timestamp: "2026-06-03T08:00:00.000Z", timezone: "Europe/Paris", externalId: "user-42" })]);

    const updated = await call("PUT", `/api/v1/schedules/${first.body.id}`, { cron: "30 7 * * *", externalId: null });
    expect(updated.body).toMatchObject({ cron: "30 7 * * *", externalId: null, nextRun: "2026-06-04T05:30:00.000Z" });
    expect((await call("GET", `/api/v1/schedules/${first.body.id}`)).body.cron).toBe("30 7 * * *");
    expect((await call("DELETE", `/api/v1/schedules/${first.body.id}`)).body).toEqual({ id: first.body.id, deleted: true });
    expect((await call("GET", `/api/v1/schedules/${first.body.id}`)).status).toBe(404);
  });

  it("a bad cron or time zone is refused naming it, and no schedule is made", async () => {
    const bad = [
      [{ task: "plain", cron: "every day" }, "cron"],
      [{ task: "plain", cron: "0 0 31 2 *" }, "cron"],
      [{ task: "plain", cron: "0 9 * * *", timezone: "Europe/Pariss" }, "timezone"],
    ] as const;
    for (const [body, field] of bad) {
      const res = await call("POST", "/api/v1/schedules", body);
      expect(res.status).toBe(400);
      expect(res.body.error.field).toBe(field);
      expect(res.body.error.message).toContain(JSON.stringify((body as Record<string, string>)[field]));
    }
    expect((await call("GET", "/api/v1/schedules")).body.data).toEqual([]);
  });

  it("daylight-saving days follow croner: a skipped 02:30 runs at 03:00, a repeated one runs once", async () => {
    clock.set("2026-03-27T12:00:00Z");
    const created = await call("POST", "/api/v1/schedules", { task: "plain", cron: "30 2 * * *", timezone: "Europe/Paris" });
    const ticks: string[] = [];
    const follow = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const next = (await call("GET", `/api/v1/schedules/${created.body.id}`)).body.nextRun;
        clock.set(next);
        await sweepEverywhere();
        ticks.push(next);
      }
    };
    await follow(4);
    // 28 March 02:30 CET; 29 March has no 02:30 (clocks jump 02:00 → 03:00): 03:00 CEST; then 02:30 CEST.
    expect(ticks).toEqual(["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z", "2026-03-31T00:30:00.000Z"]);
    // Deactivated while the clock jumps ahead, so the background scheduler loop has no missed tick to catch up.
    await call("POST", `/api/v1/schedules/${created.body.id}/deactivate`, {});
    clock.set("2026-10-23T12:00:00Z");
    await call("PUT", `/api/v1/schedules/${created.body.id}`, { cron: "30 2 * * *", timezone: "Europe/Berlin" });
    await call("POST", `/api/v1/schedules/${created.body.id}/activate`, {});
    ticks.length = 0;
    await follow(3);
    // 25 October has 02:30 twice (03:00 CEST → 02:00 CET): it runs on the first only.
    expect(ticks).toEqual(["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
    const runs = (await runsOf("plain")).filter((r) => r.payload?.scheduleId === created.body.id);
    expect(runs.map((r) => r.payload.timestamp)).toEqual([
      "2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z", "2026-03-31T00:30:00.000Z",
      "2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z",
    ]);
  });
});
