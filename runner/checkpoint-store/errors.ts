export type CheckpointStoreErrorCode = "BAD_KEY" | "BAD_LOCATION" | "NOT_FOUND" | "PUT_FAILED" | "GET_FAILED";

export class CheckpointStoreError extends Error {
  readonly code: CheckpointStoreErrorCode;

  constructor(code: CheckpointStoreErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "CheckpointStoreError";
    this.code = code;
  }
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
