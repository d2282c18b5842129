// Issue 2 end to end: the real server, an in-process runner and real task processes, driven the way
// app code drives them — through `stasis/sdk` (configure + task.trigger + runs.*) and the HTTP API.
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configure, runs, tasks } from "stasis/sdk"; // as app code imports it (the fixture tasks do too)
import type { DeploymentView, LogLine, RunView } from "../schemas/index.ts";
import { abort, busy, flaky, hello } from "./fixtures/basic/trigger/basic.ts";
import { taskProcesses } from "./support/processes.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const FIXTURE = resolve(import.meta.dirname, "fixtures/basic");
let stack: TestStack;
let v1: DeploymentView;
let v2: DeploymentView;

beforeAll(async () => {
  stack = await startTestStack({ project: "basic", runners: 1, checkpoints: false });
  v1 = await stack.deploy(FIXTURE);
  v2 = await stack.deploy(FIXTURE);
  configure({ apiUrl: stack.apiUrl, apiKey: stack.keys.development });
});

afterAll(async () => {
  await stack?.stop();
});

const finished = (run: RunView) => ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT", "EXPIRED"].includes(run.status);

describe("trigger → run → output", () => {
  it("runs a task from app code and shows its output, attempt, version and timings", async () => {
    const before = Date.now();
    const handle = await hello.trigger({ name: "Ada" });
    expect(handle).toEqual({ id: expect.any(String), isCached: false });
    const run = await runs.poll(handle.id, { intervalMs: 50, timeoutMs: 30_000 });
    expect(run).toMatchObject({
      id: handle.id,
      taskId: "hello",
      status: "COMPLETED",
      environment: "development",
      version: v2.version, // the promoted one
      payload: { name: "Ada" },
      output: { greeting: "Hello, Ada!", attempt: 1, version: v2.version },
      error: null,
      attempts: 1,
    });
    expect(v2.version).toMatch(/^\d{8}\.2$/);
    const created = Date.parse(run.createdAt);
    expect(created).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(run.startedAt!)).toBeGreaterThanOrEqual(created);
    expect(Date.parse(run.completedAt!)).toBeGreaterThanOrEqual(Date.parse(run.startedAt!));
    expect(run.durationMs).toBeGreaterThanOrEqual(0);
    expect(run.attemptDetails).toEqual([expect.objectContaining({ number: 1, status: "COMPLETED", error: null })]);
  });

  it("triggers by task id (tasks.trigger) pinned to a version", async () => {
    const { id } = await tasks.trigger("hello", { name: "pinned" }, { version: v1.version });
    const run = await runs.poll(id, { intervalMs: 50, timeoutMs: 30_000 });
    expect(run).toMatchObject({ status: "COMPLETED", version: v1.version, output: { version: v1.version } });
  });
});

describe("retries", () => {
  it("retries a failing run with backoff until it succeeds, storing each attempt's error", async () => {
    const { id } = await flaky.trigger({ succeedOn: 3 });
    const run = await runs.poll(id, { intervalMs: 50, timeoutMs: 30_000 });
    expect(run).toMatchObject({ status: "COMPLETED", attempts: 3, output: { attempt: 3 }, error: null });
    const details = run.attemptDetails!;
    expect(details.map((a) => a.status)).toEqual(["FAILED", "FAILED", "COMPLETED"]);
    for (const [i, attempt] of details.slice(0, 2).entries()) {
      expect(attempt.error).toMatchObject({ name: "TypeError", message: `attempt ${i + 1} is not enough` });
      expect(attempt.error!.stack).toMatch(/TypeError: attempt \d is not enough\n\s+at /);
      // The frame names the task's own source, line and column (the runner maps the bundle's frames), not the bundle.
      expect(attempt.error!.stack).toMatch(/trigger\/basic\.ts:17:\d+\)?\n/);
      expect(attempt.error!.stack).not.toMatch(/index\.mjs:\d+:\d+/);
    }
    const logs = await stack.api<{ data: LogLine[] }>("GET", `/api/v1/runs/${id}/logs`);
    const printed = logs.data.find((l) => l.message.startsWith("Error: printed stack"));
    expect(printed?.message).toMatch(/\n\s+at .*trigger\/basic\.ts:19:\d+\)?\n/);
    expect(printed?.message).not.toMatch(/index\.mjs:\d+:\d+/);
    // flaky: minTimeoutInMs 100, factor 2, no jitter → at least 100 ms, then 200 ms between attempts.
    const gap = (i: number) => Date.parse(details[i + 1].startedAt) - Date.parse(details[i].endedAt!);
    expect(gap(0)).toBeGreaterThanOrEqual(100);
    expect(gap(1)).toBeGreaterThanOrEqual(200);
  });

  it("fails after the last attempt with the last error", async () => {
    const { id } = await flaky.trigger({ succeedOn: 99 });
    const run = await runs.poll(id, { intervalMs: 50, timeoutMs: 30_000 });
    expect(run).toMatchObject({ status: "FAILED", attempts: 3, error: { name: "TypeError", message: "attempt 3 is not enough" } });
  });

  it("AbortTaskRunError fails the run after one attempt", async () => {
    const { id } = await abort.trigger(undefined);
    const run = await runs.poll(id, { intervalMs: 50, timeoutMs: 30_000 });
    expect(run).toMatchObject({ status: "FAILED", attempts: 1, error: { name: "AbortTaskRunError", message: "no point in retrying this" } });
  });

  it("maxDuration times the run out and its process is gone", async () => {
    const { id } = await tasks.trigger("timeboxed", null);
    await stack.waitForRun(id, (r) => r.status === "EXECUTING", "timeboxed to execute");
    const run = await runs.poll(id, { intervalMs: 50, timeoutMs: 30_000 });
    expect(run.status).toBe("TIMED_OUT");
    expect(run.attempts).toBe(1);
    await waitFor("the timed-out task process to be gone", async () => (await taskProcesses(stack.stateDir)).length === 0, { timeoutMs: 10_000 });
  });
});

describe("cancel, replay, idempotency, delay, tags", () => {
  it("cancels an executing run and kills its process", async () => {
    const { id } = await busy.trigger({ ms: 60_000 });
    await stack.waitForRun(id, (r) => r.status === "EXECUTING", "busy to execute");
    await waitFor("busy's task process", async () => (await taskProcesses(stack.stateDir)).length > 0);
    const canceled = await runs.cancel(id);
    expect(canceled.status).toBe("CANCELED");
    await waitFor("the canceled task process to be gone", async () => (await taskProcesses(stack.stateDir)).length === 0, { timeoutMs: 10_000 });
    expect((await runs.retrieve(id)).status).toBe("CANCELED");
  });

  it("replays a run with the same payload, on its version or on another one", async () => {
    const { id } = await hello.trigger({ name: "replayed" }, { version: v1.version, tags: ["replay-me"] });
    const original = await runs.poll(id, { intervalMs: 50 });
    const same = await runs.replay(id);
    const moved = await runs.replay(id, { version: v2.version });
    expect(new Set([id, same.id, moved.id]).size).toBe(3);
    const [a, b] = await Promise.all([runs.poll(same.id, { intervalMs: 50 }), runs.poll(moved.id, { intervalMs: 50 })]);
    expect(a).toMatchObject({ status: "COMPLETED", replayOf: id, payload: original.payload, version: v1.version, tags: ["replay-me"] });
    expect(b).toMatchObject({ status: "COMPLETED", replayOf: id, payload: original.payload, version: v2.version, output: { version: v2.version } });
  });

  it("returns the existing run for a repeated idempotency key", async () => {
    const first = await hello.trigger({ name: "once" }, { idempotencyKey: "order-42" });
    const second = await hello.trigger({ name: "twice" }, { idempotencyKey: "order-42" });
    expect(first.isCached).toBe(false);
    expect(second).toEqual({ id: first.id, isCached: true });
    const run = await runs.poll(first.id, { intervalMs: 50 });
    expect(run).toMatchObject({ idempotencyKey: "order-42", payload: { name: "once" } });
    const count = await stack.database.db("runs").where({ idempotency_key: "order-42" }).count<{ count: string }[]>("* as count");
    expect(Number(count[0].count)).toBe(1);
  });

  it("holds a delayed run until its time, then runs it", async () => {
    const { id } = await hello.trigger({ name: "later" }, { delay: "2s" });
    const delayed = await runs.retrieve(id);
    expect(delayed.status).toBe("DELAYED");
    const availableAt = Date.parse(delayed.availableAt!);
    expect(availableAt - Date.parse(delayed.createdAt)).toBeGreaterThanOrEqual(1900);
    const run = await runs.poll(id, { intervalMs: 50, timeoutMs: 30_000 });
    expect(run.status).toBe("COMPLETED");
    expect(Date.parse(run.startedAt!)).toBeGreaterThanOrEqual(availableAt);
  });

  it("lists runs filtered by tag, task and status", async () => {
    const tagged = await hello.trigger({ name: "t" }, { tags: ["team-a", "nightly"] });
    await runs.poll(tagged.id, { intervalMs: 50 });
    const byTag = await runs.list({ tag: "nightly" });
    expect(byTag.data.map((r) => r.id)).toEqual([tagged.id]);
    expect(byTag.data[0].tags).toEqual(["team-a", "nightly"]);
    const aborts = await runs.list({ task: "abort" });
    expect(aborts.data.length).toBe(1);
    expect(aborts.data.every((r) => r.taskId === "abort")).toBe(true);
    const canceled = await runs.list({ status: "CANCELED" });
    expect(canceled.data.length).toBeGreaterThanOrEqual(1);
    expect(canceled.data.every((r) => r.status === "CANCELED")).toBe(true);
    const page = await runs.list({ task: "hello", limit: 2 });
    expect(page.data).toHaveLength(2);
    expect(page.nextCursor).not.toBeNull();
    const next = await runs.list({ task: "hello", limit: 2, cursor: page.nextCursor! });
    expect(next.data.map((r) => r.id)).not.toContain(page.data[0].id);
    expect(Date.parse(page.data[0].createdAt)).toBeGreaterThanOrEqual(Date.parse(next.data[0].createdAt));
  });
});

describe("logs", () => {
  it("keeps console.log and logger lines with timestamps and levels", async () => {
    const before = Date.now();
    const { id } = await hello.trigger({ name: "Grace" });
    await runs.poll(id, { intervalMs: 50 });
    const page = await stack.api<{ data: LogLine[]; runFinished: boolean; next: number }>("GET", `/api/v1/runs/${id}/logs`);
    expect(page.runFinished).toBe(true);
    const lines = page.data.filter((l) => !l.message.startsWith("[stasis]"));
    expect(lines).toEqual([
      expect.objectContaining({ level: "info", message: "hello Grace", attempt: 1 }),
      expect.objectContaining({ level: "warn", message: "a structured line", data: { name: "Grace" }, attempt: 1 }),
    ]);
    for (const line of lines) expect(Date.parse(line.ts)).toBeGreaterThanOrEqual(before - 1000);
    expect(page.data.map((l) => l.seq)).toEqual([...page.data.map((l) => l.seq)].sort((a, b) => a - b));
  });

  it("answers with a run's logs only to its own environment", async () => {
    const { id } = await hello.trigger({ name: "private" });
    await expect(stack.api("GET", `/api/v1/runs/${id}/logs`, undefined, "production")).rejects.toThrow(/403|another environment|not found/i);
  });

  it("waits for new lines with waitMs and reports when the run finished", async () => {
    const { id } = await busy.trigger({ ms: 1500 });
    const seen: LogLine[] = [];
    let after = 0;
    await waitFor("busy's logs to end", async () => {
      const page = await runs.logs(id, { after, waitMs: 2000 });
      seen.push(...page.data);
      after = page.next;
      return page.runFinished && page.data.length === 0;
    }, { timeoutMs: 30_000 });
    expect(seen.map((l) => l.message)).toContain("attempt 1: tick 10");
    expect(finished(await runs.retrieve(id))).toBe(true);
  });
});
