import type { SerializedError } from "../schemas/index.ts";

/** Throw this from a task to fail the run at once, without retrying. */
export class AbortTaskRunError extends Error {
  override name = "AbortTaskRunError";
}

/** A wait with a timeout (`events.waitForEvent`, `wait.forRequest`) ran out of time. */
export class WaitTimeoutError extends Error {
  override name = "WaitTimeoutError";
}

/** A child run started with `triggerAndWait` failed; `unwrap()` throws it. */
export class ChildRunFailedError extends Error {
  override name = "ChildRunFailedError";
  constructor(
    readonly runId: string,
    readonly taskId: string,
    readonly childError: SerializedError,
  ) {
    super(`run ${runId} of task "${taskId}" failed: ${childError.name}: ${childError.message}`);
  }
}

/** The Stasis API answered with an error. */
export class StasisApiError extends Error {
  override name = "StasisApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** `runs.poll` gave up: the run was not final by the deadline (it goes on; poll again later). */
export class RunPollTimeoutError extends Error {
  override name = "RunPollTimeoutError";
  constructor(
    readonly runId: string,
    readonly status: string,
    readonly timeoutMs: number,
  ) {
    super(`run ${runId} is still ${status} after ${timeoutMs} ms`);
  }
}

export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === "string" ? value : JSON.stringify(value));
}

export function serializeError(value: unknown): SerializedError {
  const error = toError(value);
  return {
    name: error.name || "Error",
    message: error.message,
    stack: error.stack,
    ...(error instanceof AbortTaskRunError ? { doNotRetry: true } : {}),
  };
}
