import type { Knex } from "knex";
import type { RunRow } from "../engine/rows.ts";

/**
 * Claim candidates for one poll, graphile-worker style: lock up to `limit` due runs with
 * `FOR UPDATE SKIP LOCKED`, so N runners (and N server replicas) polling at once each get disjoint
 * rows without waiting on each other's locks. The `runs_claimable` partial index
 * (available_at, seq) WHERE status IN (QUEUED, DELAYED, RETRYING) makes this an index range scan
 * that never touches finished runs, however many there are.
 *
 * Only the lock is taken here; the caller decides per row (lock to the promoted deployment,
 * PENDING_VERSION, new attempt) and moves each row to EXECUTING with a compare-and-set in the same
 * transaction, so a crash between the two leaves the run claimable.
 *
 * A run resuming from a checkpoint goes only to a runner of the workload that took it (a process
 * runner cannot restore a runc checkpoint); the filter is on the rows the index range already
 * yields, so a checkpoint no runner here can restore is skipped, not a blocker for the rest.
 */
const CLAIM_SQL = `
  SELECT r.*
  FROM runs r
  WHERE r.status IN ('QUEUED', 'DELAYED', 'RETRYING')
    AND r.available_at <= now()
    AND (r.resume IS NULL OR r.checkpoint_workload IS NULL OR r.checkpoint_workload = ?)
  ORDER BY r.available_at, r.seq
  LIMIT ?
  FOR UPDATE SKIP LOCKED
`;

export async function lockClaimableRuns(trx: Knex.Transaction, limit: number, workload: string): Promise<RunRow[]> {
  if (limit <= 0) return [];
  const result = await trx.raw(CLAIM_SQL, [workload, limit]);
  return result.rows as RunRow[];
}
