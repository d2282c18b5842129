import type { Knex } from "knex";
import type { RunRow } from "../engine/rows.ts";
import { hotQuery } from "../db/prepared.ts";

/**
 * A successful attempt's end in one statement: the run moves EXECUTING → COMPLETED with a
 * compare-and-set on its state *and* the caller's lease (the fencing token), its execution time is
 * added up by PostgreSQL's clock (the one that stamped `execution_started_at` at the claim), and the
 * attempt row is closed and the run's variables snapshot deleted in the same statement. This replaced lock → update run → update attempt
 * (three round trips per completion in pg_stat_statements). No row back means the run is not (or no
 * longer) this lease's EXECUTING run: the caller takes the locked path, which tells a repeat from a
 * lost lease.
 */
const COMPLETE_SQL = `
  WITH done AS (
    UPDATE runs
    SET status = 'COMPLETED',
        output = ?::jsonb,
        error = NULL,
        completed_at = now(),
        execution_ms = execution_ms + COALESCE(GREATEST(0, floor(extract(epoch FROM now() - execution_started_at) * 1000))::bigint, 0),
        execution_started_at = NULL,
        deadline_at = NULL,
        lease_expires_at = NULL
    WHERE id = ? AND lease_id = ? AND status = 'EXECUTING'
    RETURNING *
  ), attempt AS (
    UPDATE run_attempts a SET status = 'COMPLETED', ended_at = now()
    FROM done WHERE a.run_id = done.id AND a.number = done.attempt_count
  ), variables AS (
    DELETE FROM run_variables v USING done WHERE v.run_id = done.id
  )
  -- Whether the run was handed a connection token: its output is redacted then (a PK lookup, same round trip).
  SELECT done.*, EXISTS (SELECT 1 FROM run_connections rc WHERE rc.run_id = done.id) AS holds_connection_tokens, true AS variables_deleted FROM done
`;

/**
 * A completed run, and whether it holds connection tokens (whose values its output must not keep).
 * Its variables snapshot went in the same statement (`variables_deleted`: the final hook of
 * secrets/run-variables.ts skips it — one round trip less per end).
 */
export type CompletedRow = RunRow & { holds_connection_tokens: boolean; variables_deleted: true };

export async function completeLeasedRun(trx: Knex.Transaction, runId: string, leaseId: string, output: unknown): Promise<CompletedRow | null> {
  const result = await hotQuery<CompletedRow>(trx, "stasis_complete", COMPLETE_SQL, [JSON.stringify(output ?? null), runId, leaseId]);
  return result.rows[0] ?? null;
}

/**
 * The same for several successful ends at once (a batched `POST /complete`): one statement for all
 * of them, each row still a compare-and-set on its state and its own lease. `r.id = ANY(ids)` lets
 * the planner use the primary key (it cannot see how few rows jsonb_to_recordset yields).
 */
const COMPLETE_MANY_SQL = `
  WITH done AS (
    UPDATE runs r
    SET status = 'COMPLETED',
        output = e.out -> 'v',
        error = NULL,
        completed_at = now(),
        execution_ms = r.execution_ms + COALESCE(GREATEST(0, floor(extract(epoch FROM now() - r.execution_started_at) * 1000))::bigint, 0),
        execution_started_at = NULL,
        deadline_at = NULL,
        lease_expires_at = NULL
    FROM jsonb_to_recordset(?::jsonb) AS e(run_id text, lease_id text, out jsonb)
    WHERE r.id = ANY(?::text[]) AND r.id = e.run_id AND r.lease_id = e.lease_id AND r.status = 'EXECUTING'
    RETURNING r.*
  ), attempt AS (
    UPDATE run_attempts a SET status = 'COMPLETED', ended_at = now()
    FROM done WHERE a.run_id = done.id AND a.number = done.attempt_count
  ), variables AS (
    DELETE FROM run_variables v USING done WHERE v.run_id = done.id
  )
  -- Whether the run was handed a connection token: its output is redacted then (a PK lookup, same round trip).
  SELECT done.*, EXISTS (SELECT 1 FROM run_connections rc WHERE rc.run_id = done.id) AS holds_connection_tokens, true AS variables_deleted FROM done
`;

export async function completeLeasedRuns(trx: Knex.Transaction, ends: Array<{ runId: string; leaseId: string; output: unknown }>): Promise<CompletedRow[]> {
  if (ends.length === 0) return [];
  // Wrapped as {"v": output}: a JSON null output stays a JSON null (as the single path stores it), not SQL NULL.
  const rows = ends.map((e) => ({ run_id: e.runId, lease_id: e.leaseId, out: { v: e.output ?? null } }));
  const result = await hotQuery<CompletedRow>(trx, "stasis_complete_many", COMPLETE_MANY_SQL, [JSON.stringify(rows), ends.map((e) => e.runId)]);
  return result.rows;
}
