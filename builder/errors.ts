/** Every builder failure carries a stable code so callers (CLI, server, runner) can tell them apart. */
export type BuilderErrorCode =
  | "CONFIG_INVALID"
  | "CONFIG_LOAD_FAILED"
  | "NO_TASK_DIRS"
  | "BUNDLE_FAILED"
  | "INDEX_FAILED"
  | "DUPLICATE_TASK_ID"
  | "RUNTIME_LAYER_FAILED"
  | "EXTERNALS_FAILED"
  | "TAG_EXISTS"
  | "DIGEST_MISMATCH"
  | "NOT_FOUND"
  | "BAD_REF"
  | "REGISTRY_ERROR"
  | "REGISTRY_AUTH"
  | "UNSAFE_LAYER"
  | "IMAGE_NOT_ALLOWED"
  | "BUILD_SANDBOX_FAILED"
  | "UNKNOWN_WEBHOOK_EVENT";

export class BuilderError extends Error {
  readonly code: BuilderErrorCode;
  constructor(code: BuilderErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BuilderError";
    this.code = code;
  }
}

export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
