import type { RunContext, TaskCall, WaitResult } from "../schemas/index.ts";

/**
 * Inside a run, the SDK talks to its runner through this; outside a run (app code) it is null and
 * the SDK talks to the HTTP API instead.
 */
export interface RunRuntime {
  readonly ctx: RunContext;
  call(call: TaskCall): Promise<unknown>;
  /** `key` says which wait of the run this is (`nextWaitKey()`, or a key the task gave). */
  wait(spec: unknown, key?: string): Promise<WaitResult>;
  /**
   * The key of the run's next wait: `#1`, `#2`, … counted per attempt. A process restored from a
   * checkpoint continues its count; a fresh attempt starts again at `#1` and so reaches the waits
   * the lost attempt created, with the results already delivered to them.
   */
  nextWaitKey(): string;
  /**
   * The place of the run's next plain `trigger`/`batchTrigger`: `trigger#1`, `trigger#2`, … counted
   * per attempt apart from the waits (so a trigger added or skipped does not move the waits' places).
   * The children's default idempotency keys come from it: an attempt that runs the code again gets the
   * children the lost attempt started instead of starting them twice.
   */
  nextTriggerKey(): string;
  registerCompensation(fn: () => unknown | Promise<unknown>, name: string): void;
}

let current: RunRuntime | null = null;

export function setRunRuntime(runtime: RunRuntime | null): void {
  current = runtime;
}

export function getRunRuntime(): RunRuntime | null {
  return current;
}

export function requireRunRuntime(what: string): RunRuntime {
  if (!current) throw new Error(`${what} can only be called inside a task's run()`);
  return current;
}
