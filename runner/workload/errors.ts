export type WorkloadErrorCode =
  | "CHECKPOINTS_UNAVAILABLE"
  | "NOT_RUNNING"
  | "UNKNOWN_PROCESS"
  | "DUMP_FAILED"
  /** A dump held for its verdict (CheckpointOptions.verdict) that said no: the task goes on. */
  | "DUMP_DECLINED"
  | "RESTORE_FAILED"
  | "BAD_CHECKPOINT"
  | "START_FAILED";

export class WorkloadError extends Error {
  readonly code: WorkloadErrorCode;

  constructor(code: WorkloadErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "WorkloadError";
    this.code = code;
  }
}

export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
