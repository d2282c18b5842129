export type CheckpointStoreErrorCode = "BAD_KEY" | "BAD_LOCATION" | "NOT_FOUND" | "PUT_FAILED" | "GET_FAILED" | "DELETE_FAILED";

export class CheckpointStoreError extends Error {
  readonly code: CheckpointStoreErrorCode;

  constructor(code: CheckpointStoreErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "CheckpointStoreError";
    this.code = code;
  }
}

/**
 * A checkpoint is not the one the server recorded: its bytes hash to another sha256 (altered,
 * swapped for another run's, or cut off), or it fails GCM authentication under its key. Nothing
 * of it is restored.
 */
export class CheckpointIntegrityError extends Error {
  override name = "CheckpointIntegrityError";
  readonly code = "CHECKPOINT_INTEGRITY";
}

const KEY_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

/** Keys become paths (or tags): only plain segments, no `..`, no leading `/`. */
export function checkKey(key: string): string[] {
  const segments = key.split("/");
  if (!key || segments.some((segment) => !KEY_SEGMENT.test(segment))) {
    throw new CheckpointStoreError("BAD_KEY", `bad checkpoint key ${JSON.stringify(key)}: use segments of letters, digits, ".", "_", "-" joined by "/"`);
  }
  return segments;
}
