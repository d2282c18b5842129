import type { Knex } from "knex";
import { hotQuery } from "../db/prepared.ts";

/** Which of a poll's side looks have anything to take: each is skipped when its answer is false. */
export interface PendingWork {
  stops: boolean;
  continues: boolean;
  checkpointDeletions: boolean;
}

/**
 * One read-only statement instead of three writes and a transaction: a poll used to run the stops'
 * UPDATE, the continues' BEGIN / SELECT … FOR UPDATE / COMMIT and the checkpoint deletions' DELETE
 * every time it looked, five statements next to the claim's four, though almost every look finds
 * nothing (bench/trigger-latency: a reused burst's CPU went to PostgreSQL writes, one per
 * statement). Each EXISTS walks a partial index (runs_stop_pending, runs_runner_waiting) or the
 * first row of a small table. What it sees is taken by the usual statements, which decide under
 * their own locks; a change that lands just after this look sends a wake, and the long poll looks
 * again, as it did when the change landed just after the take.
 */
const PENDING_SQL = `
  SELECT
    EXISTS (SELECT 1 FROM runs WHERE runner_id = ? AND stop_pending) AS stops,
    EXISTS (SELECT 1 FROM runs r JOIN waitpoints w ON w.id = r.waitpoint_id WHERE r.runner_id = ? AND r.status = 'WAITING' AND w.status <> 'PENDING') AS continues,
    EXISTS (SELECT 1 FROM checkpoints_to_delete) AS checkpoint_deletions
`;

export async function pendingWork(db: Knex, runnerId: string): Promise<PendingWork> {
  const { rows } = await hotQuery<{ stops: boolean; continues: boolean; checkpoint_deletions: boolean }>(db, "stasis_pending_work", PENDING_SQL, [runnerId, runnerId]);
  const row = rows[0];
  return { stops: row.stops, continues: row.continues, checkpointDeletions: row.checkpoint_deletions };
}
