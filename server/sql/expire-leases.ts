import type { Knex } from "knex";
import type { RunRow } from "../engine/rows.ts";

/**
 * Runs whose runner stopped heartbeating. The `runs_lease_due` partial index on lease_expires_at
 * (EXECUTING/WAITING only) turns this into a range scan over just the overdue leases; SKIP LOCKED
 * lets several server replicas sweep at once without blocking or double-recovering, and a run a
 * runner is completing right now (row locked) is simply looked at on the next sweep.
 */
const EXPIRED_LEASES_SQL = `
  SELECT r.*
  FROM runs r
  WHERE r.status IN ('EXECUTING', 'WAITING')
    AND r.lease_expires_at <= now()
  ORDER BY r.lease_expires_at
  LIMIT ?
  FOR UPDATE SKIP LOCKED
`;

export async function lockExpiredLeases(trx: Knex.Transaction, limit: number): Promise<RunRow[]> {
  return (await trx.raw(EXPIRED_LEASES_SQL, [limit])).rows as RunRow[];
}
