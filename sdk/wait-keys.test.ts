// Which key each wait of a run carries: its place in the run (counted per attempt) or the task's key.
import { afterEach, describe, expect, it } from "vitest";
import type { TaskCall, WaitResult } from "../schemas/index.ts";
import { events } from "./events.ts";
import { setRunRuntime, type RunRuntime } from "./run-runtime.ts";
import { task } from "./task.ts";
import { wait } from "./wait.ts";
import { createIpcRunRuntime } from "./worker/run-runtime-ipc.ts";

const ctx = { runId: "run_keys", taskId: "t", attempt: 1, environment: "dev", project: "p", version: "20260101.1", tags: [] };

/** The worker's own runtime over a channel that answers every call at once and records it. */
function recordingRuntime(): { runtime: RunRuntime; calls: TaskCall[] } {
  const calls: TaskCall[] = [];
  const runtime = createIpcRunRuntime(
    {
      send(message) {
        if (message.type !== "call") return;
        calls.push(message.call);
        const call = message.call;
        queueMicrotask(() => {
          if (call.method === "wait") {
            const spec = call.spec as { kind: string; runIds?: string[] };
            const result: WaitResult =
              spec.kind === "event" ? { kind: "event", id: "e", event: "x", payload: 1 }
              : spec.kind === "runs" ? { kind: "runs", results: spec.runIds!.map((runId) => ({ ok: true as const, runId, taskId: "child", output: 2 })) }
              : spec.kind === "request" ? { kind: "request", request: { method: "GET", headers: {}, query: {}, body: null, receivedAt: "2026-01-01T00:00:00Z" } }
              : { kind: "duration" };
            runtime.handle({ type: "wait-result", callId: calls.length, result });
          } else if (call.method === "trigger") runtime.handle({ type: "reply", callId: calls.length, ok: true, result: { runIds: call.items.map((_, i) => `run_child_${i}`) } });
          else runtime.handle({ type: "reply", callId: calls.length, ok: true, result: { token: "tok", url: "http://x/tok" } });
        });
      },
      onMessage() {},
      flush: async () => {},
    },
    ctx,
  );
  return { runtime, calls };
}

afterEach(() => setRunRuntime(null));

describe("wait keys", () => {
  it("numbers waits in call order, keeps task keys apart, and derives triggerAndWait children's idempotency keys from the place", async () => {
    const { runtime, calls } = recordingRuntime();
    setRunRuntime(runtime);
    const child = task({ id: "child-for-keys", run: async () => 2 });
    await wait.for({ seconds: 10 });
    await wait.for({ seconds: 10 }, { key: "cool-down" });
    await events.waitForEvent({ event: "x" });
    const { response } = await wait.forRequest();
    await response;
    await child.batchTriggerAndWait([{ payload: 1 }, { payload: 2, options: { idempotencyKey: "mine" } }]);
    await wait.until(new Date(Date.now() + 60_000));

    const keyed = calls.map((c) => (c.method === "trigger" ? `trigger ${c.items.map((i) => (i.options as { idempotencyKey: string }).idempotencyKey).join(" ")}` : `${c.method}${c.method === "wait" ? ` ${(c.spec as { kind: string }).kind}` : ""} ${"key" in c ? c.key : ""}`));
    expect(keyed).toEqual([
      "wait duration #1",
      "wait duration key:cool-down",
      "wait event #2",
      "createRequestToken #3",
      "wait request #3",
      "trigger run_keys/#4/0 mine",
      "wait runs #4",
      "wait until #5",
    ]);
  });

  it("a fresh runtime (a new attempt) counts from #1 again", async () => {
    for (let attempt = 0; attempt < 2; attempt++) {
      const { runtime, calls } = recordingRuntime();
      setRunRuntime(runtime);
      await wait.for(100);
      expect(calls.map((c) => (c.method === "wait" ? c.key : null))).toEqual(["#1"]);
    }
  });

  it("keys plain triggers by their place among the run's triggers, apart from the waits' places", async () => {
    const { runtime, calls } = recordingRuntime();
    setRunRuntime(runtime);
    const child = task({ id: "child-for-trigger-keys", run: async () => 2 });
    await child.trigger(1);
    await wait.for(100);
    await child.batchTrigger([{ payload: 2 }, { payload: 3, options: { idempotencyKey: "mine" } }]);
    await child.triggerAndWait(4);
    await wait.for(100);

    const keyed = calls.map((c) => (c.method === "trigger" ? `trigger ${c.items.map((i) => (i.options as { idempotencyKey: string }).idempotencyKey).join(" ")}` : `${c.method} ${"key" in c ? c.key : ""}`));
    expect(keyed).toEqual([
      "trigger run_keys/trigger#1/0",
      "wait #1",
      "trigger run_keys/trigger#2/0 mine",
      "trigger run_keys/#2/0",
      "wait #2",
      "wait #3",
    ]);
  });

  it("a fresh runtime (a new attempt) gets the same trigger keys for the same code", async () => {
    const keys: string[][] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const { runtime, calls } = recordingRuntime();
      setRunRuntime(runtime);
      const child = task({ id: `child-again-${attempt}`, run: async () => 2 });
      await child.trigger(1);
      await child.trigger(2);
      keys.push(calls.flatMap((c) => (c.method === "trigger" ? c.items.map((i) => (i.options as { idempotencyKey: string }).idempotencyKey) : [])));
    }
    expect(keys[1]).toEqual(keys[0]);
    expect(keys[0]).toEqual(["run_keys/trigger#1/0", "run_keys/trigger#2/0"]);
  });
});
