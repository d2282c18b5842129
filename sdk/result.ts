import type { ChildRunResult, SerializedError } from "../schemas/index.ts";
import { ChildRunFailedError } from "./errors.ts";

/** The outcome of a child run: `{ ok: true, output } | { ok: false, error }`, with `unwrap()`. */
export type TaskRunResult<TOutput> =
  | { ok: true; id: string; taskId: string; output: TOutput; unwrap(): TOutput }
  | { ok: false; id: string; taskId: string; error: SerializedError; unwrap(): never };

export function toTaskRunResult<TOutput>(result: ChildRunResult): TaskRunResult<TOutput> {
  if (result.ok) {
    const output = result.output as TOutput;
    return { ok: true, id: result.runId, taskId: result.taskId, output, unwrap: () => output };
  }
  const { error, runId, taskId } = result;
  return {
    ok: false,
    id: runId,
    taskId,
    error,
    unwrap: () => {
      throw new ChildRunFailedError(runId, taskId, error);
    },
  };
}
