import type { Knex } from "knex";

/**
 * A second NOTIFY channel beside the wake-ups: one message per run state change (and per batch of
 * log lines), naming the run and its environment, so a dashboard's live stream forwards only its
 * own environment's changes. Sent inside the caller's transaction: heard once committed, never for
 * a change that rolled back. Runners and the scheduler do not listen to it.
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

export async function notifyRunChange(db: Knex | Knex.Transaction, change: RunChange): Promise<void> {
  await db.raw("SELECT pg_notify(?, ?)", [RUN_CHANGES_CHANNEL, JSON.stringify(change)]);
}

export function parseRunChange(payload: string | undefined): RunChange | null {
  try {
    const value = JSON.parse(payload ?? "") as Partial<RunChange>;
    return typeof value.env === "string" && typeof value.run === "string" && typeof value.what === "string" ? (value as RunChange) : null;
  } catch {
    return null;
  }
}
