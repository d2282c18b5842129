import type { Knex } from "knex";

/** One run's move to EXECUTING: the state it was locked in (the compare) and the lease it gets. */
export interface AttemptStart {
  id: string;
  from: string;
  deployment_id: string;
  lease_id: string;
  attempt_count: number;
  deadline_at: string | null;
  max_duration_s: number | null;
  /** true: a new attempt row (number attempt_count) is written; false: the open attempt (a restore) is moved to this runner. */
  new_attempt: boolean;
  /** A resume's wait: marked resumed here, by this runner, if the run moved. */
  resumed_waitpoint: string | null;
}

/**
 * Moves every run of one claim to EXECUTING and records its attempt in one statement: a compare-and-set per row (`status =
 * from`, the state the claim read and locked) over a JSON array expanded with jsonb_to_recordset,
 * as the heartbeat does. The rows are locked by the claim, so every compare holds; a row that did
 * not move is left out of the answer and the caller hands it to no runner. One round trip for a
 * claim of any size, where one UPDATE per run was the claim's largest cost in pg_stat_statements.
 * The attempts are written by the same statement (data-modifying CTEs over the moved rows): a new
 * attempt's row, or the open attempt of a restored run moved to this runner; only rows that moved
 * get one. Before, a separate INSERT was one more round trip inside every claim's transaction. So is the
 * resumed wait's `resumed_at` and runner (what the run timeline shows), one more before.
 * `r.id = ANY(ids)` is there for the planner: it cannot see how few rows jsonb_to_recordset yields
 * and, without it, hash-joined a sequential scan of all runs (9 ms per claim at 7,000 runs); `w.id = ANY(waits)` likewise.
 */
const START_SQL = `
  WITH moved AS (
    UPDATE runs r
    SET status = 'EXECUTING',
        deployment_id = s.deployment_id,
        runner_id = ?,
        lease_id = s.lease_id,
        lease_expires_at = now() + make_interval(secs => ? / 1000.0),
        attempt_count = s.attempt_count,
        started_at = COALESCE(r.started_at, now()),
        execution_started_at = now(),
        deadline_at = s.deadline_at,
        max_duration_s = s.max_duration_s,
        waitpoint_id = NULL,
        resume = NULL,
        stop_pending = false,
        stop_reason = NULL
    FROM jsonb_to_recordset(?::jsonb) AS s(id text, "from" text, deployment_id uuid, lease_id text, attempt_count int, deadline_at timestamptz, max_duration_s int, new_attempt boolean, resumed_waitpoint text)
    WHERE r.id = ANY(?::text[]) AND r.id = s.id AND r.status = s."from"
    RETURNING r.id, r.attempt_count, r.runner_id, s.new_attempt, s.resumed_waitpoint
  ),
  new_attempts AS (
    INSERT INTO run_attempts (run_id, number, status, runner_id)
    SELECT id, attempt_count, 'EXECUTING', runner_id FROM moved WHERE new_attempt
  ),
  reattached AS (
    UPDATE run_attempts a SET runner_id = m.runner_id
    FROM moved m
    WHERE NOT m.new_attempt AND a.run_id = m.id AND a.number = m.attempt_count
  ),
  resumed AS (
    UPDATE waitpoints w SET resumed_at = now(), resumed_runner_id = m.runner_id
    FROM moved m
    WHERE w.id = ANY(?::text[]) AND w.id = m.resumed_waitpoint
  )
  SELECT id FROM moved
`;

export async function startAttempts(trx: Knex.Transaction, runnerId: string, leaseMs: number, starts: AttemptStart[]): Promise<Set<string>> {
  if (starts.length === 0) return new Set();
  const waits = starts.flatMap((s) => (s.resumed_waitpoint ? [s.resumed_waitpoint] : []));
  const result = await trx.raw(START_SQL, [runnerId, leaseMs, JSON.stringify(starts), starts.map((s) => s.id), waits]);
  return new Set((result.rows as Array<{ id: string }>).map((r) => r.id));
}
