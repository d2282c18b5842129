import type { Knex } from "knex";
import type { WaitpointRow } from "../engine/rows.ts";

/**
 * A waitpoint completes exactly once: the `status = 'PENDING'` guard makes the UPDATE a
 * compare-and-set, so an event, a request hit, a timer and a timeout racing for the same
 * waitpoint produce one winner (RETURNING a row) and losers that see no row and change nothing.
 * The row lock taken here is held until commit; callers then lock the waiting run (always
 * waitpoint → run, the same order suspend uses) to queue or continue it.
 */
const COMPLETE_SQL = `
  UPDATE waitpoints
  SET status = ?, result = ?::jsonb, completed_at = now()
  WHERE id = ? AND status = 'PENDING'
  RETURNING *
`;

export async function completeWaitpointRow(trx: Knex.Transaction, id: string, status: "COMPLETED" | "TIMED_OUT" | "CANCELED", result: unknown): Promise<WaitpointRow | null> {
  const rows = (await trx.raw(COMPLETE_SQL, [status, JSON.stringify(result), id])).rows as WaitpointRow[];
  return rows[0] ?? null;
}

/**
 * Due timers (duration/until waits, event and request timeouts), oldest first. Uses the
 * `waitpoints_due` partial index (PENDING rows with a due_at only); SKIP LOCKED so replicas split
 * the work and an event completing the same waitpoint right now is not waited on.
 */
export async function lockDueWaitpoints(trx: Knex.Transaction, limit: number): Promise<WaitpointRow[]> {
  const sql = `SELECT * FROM waitpoints WHERE status = 'PENDING' AND due_at <= now() ORDER BY due_at LIMIT ? FOR UPDATE SKIP LOCKED`;
  return (await trx.raw(sql, [limit])).rows as WaitpointRow[];
}
