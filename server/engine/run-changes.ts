/**
 * A second channel beside the wake-ups: run state changes (and batches of log lines), each naming
 * the run and its environment, so a dashboard's live stream forwards only its own environment's
 * changes. Sent by `notifyRunChanges` (notify.ts) once the caller's transaction commits: heard
 * never for a change that rolled back. Runners and the scheduler do not listen to it.
 */
export const RUN_CHANGES_CHANNEL = "stasis_run_changes";
export const RUN_CHANGE_EVENT = "run-change";

export interface RunChange {
  /** The run's environment id. */
  env: string;
  run: string;
  /** The new status, or "logs" when lines were appended. */
  what: string;
}

function isRunChange(value: unknown): value is RunChange {
  const v = value as Partial<RunChange> | null;
  return typeof v?.env === "string" && typeof v.run === "string" && typeof v.what === "string";
}

/** Changes go out in NOTIFYs of at most this many (a NOTIFY payload must stay under 8000 bytes). */
export const RUN_CHANGES_PER_NOTIFY = 40;

/** `{ origin, changes }`: the sender's mark (its own listeners skip the echo) and the changes. */
export function runChangesPayload(origin: string, changes: RunChange[]): string {
  return JSON.stringify({ origin, changes });
}

export function parseRunChanges(payload: string | undefined): { origin: string | null; changes: RunChange[] } {
  try {
    const value = JSON.parse(payload ?? "") as { origin?: unknown; changes?: unknown };
    const changes = Array.isArray(value.changes) ? value.changes.filter(isRunChange) : [];
    return { origin: typeof value.origin === "string" ? value.origin : null, changes };
  } catch {
    return { origin: null, changes: [] };
  }
}
