// Bulk cancel and replay by run ids: one request, every run's outcome, and bad input (too many,
// repeated, unknown or another environment's ids) refused as a whole with nothing changed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_BULK_RUNS } from "../schemas/index.ts";
import { deploy, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

let f: ServerFixture;
beforeAll(async () => {
  f = await startServerFixture();
  await deploy(f, ["hello"], { key: f.keys.production });
  await deploy(f, ["hello"], { key: f.keys.staging });
});
afterAll(async () => {
  await f?.close();
});

async function trigger(key = f.keys.production): Promise<string> {
  const res = await f.call("POST", "/api/v1/tasks/hello/trigger", { key, body: { payload: { n: 1 } } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.id;
}
const status = async (id: string, key = f.keys.production) => (await f.call("GET", `/api/v1/runs/${id}`, { key })).body.status;

describe("bulk run routes", () => {
  it("cancels several runs in one request and reports each run, a finished one failing alone", async () => {
    const [a, b, c] = [await trigger(), await trigger(), await trigger()];
    expect((await f.call("POST", `/api/v1/runs/${c}/cancel`)).status).toBe(200);
    const res = await f.call("POST", "/api/v1/runs/bulk/cancel", { body: { ids: [a, b, c] } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ done: 2, failed: 1 });
    expect(res.body.results).toEqual([
      { id: a, ok: true, status: "CANCELED" },
      { id: b, ok: true, status: "CANCELED" },
      expect.objectContaining({ id: c, ok: false, error: expect.objectContaining({ code: "RUN_FINISHED" }) }),
    ]);
    expect(await status(a)).toBe("CANCELED");
    expect(await status(b)).toBe("CANCELED");
  });

  it("replays several runs: new runs of the same task and payload, each marked as a replay", async () => {
    const [a, b] = [await trigger(), await trigger()];
    const res = await f.call("POST", "/api/v1/runs/bulk/replay", { body: { ids: [a, b] } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.done).toBe(2);
    for (const [i, original] of [a, b].entries()) {
      const outcome = res.body.results[i];
      expect(outcome).toMatchObject({ id: original, ok: true });
      const replay = (await f.call("GET", `/api/v1/runs/${outcome.newRunId}`)).body;
      expect(replay).toMatchObject({ taskId: "hello", payload: { n: 1 }, replayOf: original });
    }
  });

  it("refuses another environment's ids, unknown ids, repeats and too many ids, changing nothing", async () => {
    const mine = await trigger();
    const theirs = await trigger(f.keys.staging);
    const before = (await f.call("GET", "/api/v1/runs?limit=100")).body.data.length;

    const foreign = await f.call("POST", "/api/v1/runs/bulk/cancel", { body: { ids: [mine, theirs] } });
    expect(foreign.status).toBe(403);
    expect(foreign.body.error.message).toContain(theirs);
    expect(foreign.body.error.message).not.toContain(mine);

    const unknown = await f.call("POST", "/api/v1/runs/bulk/replay", { body: { ids: [mine, "run_nope"] } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toContain("run_nope");

    const repeated = await f.call("POST", "/api/v1/runs/bulk/cancel", { body: { ids: [mine, mine] } });
    expect(repeated.status).toBe(400);
    const tooMany = await f.call("POST", "/api/v1/runs/bulk/cancel", { body: { ids: Array.from({ length: MAX_BULK_RUNS + 1 }, (_, i) => `run_${i}`) } });
    expect(tooMany.status).toBe(400);
    expect(JSON.stringify(tooMany.body)).toContain(String(MAX_BULK_RUNS));
    const empty = await f.call("POST", "/api/v1/runs/bulk/cancel", { body: { ids: [] } });
    expect(empty.status).toBe(400);

    // Nothing moved: both runs still queued, no replay was created.
    expect(await status(mine)).toBe("QUEUED");
    expect(await status(theirs, f.keys.staging)).toBe("QUEUED");
    expect((await f.call("GET", "/api/v1/runs?limit=100")).body.data.length).toBe(before);
  });

  it("needs a credential", async () => {
    const res = await f.call("POST", "/api/v1/runs/bulk/cancel", { key: null, body: { ids: ["run_x"] } });
    expect(res.status).toBe(401);
  });
});
