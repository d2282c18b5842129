import { RunnerToTask } from "../../schemas/index.ts";

/**
 * zod compiles a schema's fast path on its first parse: the first `execute` a process read cost
 * ~20 ms of the run's start (bench/trigger-latency/start-trace.ts, a loaded 2-core machine), the
 * first `reply` and `wait-result` as much again mid-run. Parsed once here, before `ready`: a warm
 * spare pays it while it idles, and a process restored from a checkpoint carries the compiled
 * code with it. The messages are samples, never acted on.
 */
export function warmUpMessageParsing(): void {
  const ctx = { runId: "run_warmup", taskId: "warmup", attempt: 1, environment: "warmup", project: "warmup", version: "0", tags: ["warmup"] };
  const samples: unknown[] = [
    { type: "execute", ctx, payload: { warmup: [1, "a", null, { b: true }] } },
    { type: "reply", callId: 1, ok: true, result: { warmup: true } },
    { type: "reply", callId: 1, ok: false, error: { name: "Error", message: "warmup" } },
    { type: "wait-result", callId: 1, result: { kind: "duration" } },
    { type: "wait-result", callId: 1, result: { kind: "event", id: "e", event: "warmup", payload: null } },
    { type: "prepare-checkpoint" },
    { type: "cancel", reason: "warmup" },
  ];
  for (const sample of samples) RunnerToTask.safeParse(JSON.parse(JSON.stringify(sample)));
}
