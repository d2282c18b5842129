/**
 * One catalogue of the errors the server raises on purpose. Each carries a code, an HTTP status
 * and (optionally) the field it is about; the error handler turns them into `ApiErrorBody`.
 */
export class StasisError extends Error {
  readonly code: string;
  readonly status: number;
  readonly field?: string;
  /** A 5xx whose message is meant for the caller (it names a setting, no internals). */
  readonly expose: boolean;

  constructor(code: string, status: number, message: string, options: { field?: string; cause?: unknown; expose?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.expose = options.expose ?? false;
    this.name = "StasisError";
    this.code = code;
    this.status = status;
    this.field = options.field;
  }
}

export const unauthorized = (message: string) => new StasisError("UNAUTHORIZED", 401, message);
export const forbidden = (message: string) => new StasisError("FORBIDDEN", 403, message);
export const notFound = (message: string, field?: string) => new StasisError("NOT_FOUND", 404, message, { field });
export const conflict = (message: string, code = "CONFLICT") => new StasisError(code, 409, message);
export const badRequest = (message: string, field?: string) => new StasisError("BAD_REQUEST", 400, message, { field });
export const leaseLost = (runId: string) => new StasisError("LEASE_LOST", 409, `lease lost: run ${runId} is no longer held by this lease`);

/** The database schema was migrated by a newer Stasis than this one. */
export class SchemaTooNewError extends Error {
  constructor(readonly databaseVersion: number, readonly codeVersion: number) {
    super(
      `the database schema is at migration ${databaseVersion} but this Stasis only knows up to ${codeVersion}: ` +
        `upgrade Stasis (refusing to start against a newer schema)`,
    );
    this.name = "SchemaTooNewError";
  }
}

/** Version allocation kept colliding with concurrent deploys. */
export class VersionAllocationError extends Error {
  constructor(environmentId: string, attempts: number, options: { cause?: unknown } = {}) {
    super(`could not allocate a deployment version for environment ${environmentId} after ${attempts} attempts`, options);
    this.name = "VersionAllocationError";
  }
}

export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
