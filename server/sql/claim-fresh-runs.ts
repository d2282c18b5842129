import type { Knex } from "knex";

/** A run the one-statement claim moved to EXECUTING, with what its claim answer needs. */
export interface FreshClaim {
  id: string;
  task_id: string;
  payload: unknown;
  tags: string[] | null;
  environment_id: string;
  environment_slug: string;
  environment_number: string | number;
  project_slug: string;
  deployment_id: string;
  lease_id: string;
  attempt_count: number;
  deadline_at: string | null;
}

/**
 * The common claim in one statement and one round trip (autocommit: no BEGIN, no COMMIT round
 * trips): a first or later attempt that resumes no checkpoint, of a run whose deployment is known
 * (its own, or the promoted one that has the task), in an environment without variables (or on a
 * server without a master key, where no run gets any). Lock as claim-runs.ts does (`FOR UPDATE SKIP
 * LOCKED` over the `runs_claimable` partial index), then move the eligible rows to EXECUTING with a
 * compare-and-set on the state they were locked in and write their attempts, in data-modifying CTEs
 * of the same statement, so a run is never moved without its attempt nor claimed twice. maxDuration's
 * budget comes from the run or its task's manifest entry, as `maxDurationMs` in claim.ts computes it.
 *
 * Rows it locked but may not take (a resume, PENDING_VERSION, variables to decrypt and snapshot) are
 * counted in `locked` and released at the end of the statement, untouched; the caller then runs the
 * full claim (claim.ts) for them. Lease ids come from the caller (`lease_<claimKey>_…`), one per
 * locked row in queue order. bench/trigger-latency/sql-trace.ts: the full claim was BEGIN, two or
 * more statements and COMMIT in sequence between a trigger's commit and its runner's answer.
 */
const CLAIM_FRESH_SQL = `
  WITH locked AS MATERIALIZED (
    SELECT r.id, r.status, r.task_id, r.deployment_id, r.environment_id, r.resume, r.max_duration_s, r.available_at, r.seq
    FROM runs r
    WHERE r.status IN ('QUEUED', 'DELAYED', 'RETRYING')
      AND r.available_at <= now()
      AND (r.resume IS NULL OR r.checkpoint_workload IS NULL OR r.checkpoint_workload = (SELECT COALESCE(MAX(w.workload), 'process') FROM runners w WHERE w.id = ?))
    ORDER BY r.available_at, r.seq
    LIMIT ?
    FOR UPDATE SKIP LOCKED
  ),
  placed AS (
    SELECT l.*, e.slug AS environment_slug, e.number AS environment_number, p.slug AS project_slug,
           COALESCE(l.deployment_id, CASE WHEN l.task_id = ANY(pd.tasks) THEN pd.id END) AS target_deployment_id,
           (?::boolean OR NOT EXISTS (SELECT 1 FROM environment_variables v WHERE v.project_id = p.id AND (v.scope = e.slug OR (e.slug LIKE 'preview/%' AND v.scope = 'preview')))) AS no_variables,
           row_number() OVER (ORDER BY l.available_at, l.seq) AS n
    FROM locked l
    JOIN environments e ON e.id = l.environment_id
    JOIN projects p ON p.id = e.project_id
    LEFT JOIN deployments pd ON pd.id = e.promoted_deployment_id
  ),
  fresh AS (
    SELECT pl.id, pl.status, pl.n, pl.target_deployment_id, pl.environment_slug, pl.environment_number, pl.project_slug,
           COALESCE(pl.max_duration_s, (SELECT (t->>'maxDuration')::int FROM jsonb_array_elements(d.manifest->'tasks') t WHERE t->>'id' = pl.task_id LIMIT 1)) AS budget_s
    FROM placed pl
    JOIN deployments d ON d.id = pl.target_deployment_id
    WHERE pl.resume IS NULL AND pl.no_variables
  ),
  moved AS (
    UPDATE runs r
    SET status = 'EXECUTING',
        deployment_id = f.target_deployment_id,
        runner_id = ?,
        lease_id = (?::text[])[f.n],
        lease_expires_at = now() + make_interval(secs => ? / 1000.0),
        attempt_count = r.attempt_count + 1,
        started_at = COALESCE(r.started_at, now()),
        execution_started_at = now(),
        deadline_at = CASE WHEN f.budget_s IS NULL THEN NULL ELSE now() + make_interval(secs => GREATEST(0, f.budget_s * 1000.0 - r.execution_ms) / 1000.0) END,
        max_duration_s = f.budget_s,
        waitpoint_id = NULL,
        resume = NULL,
        stop_pending = false,
        stop_reason = NULL
    FROM fresh f
    WHERE r.id = f.id AND r.status = f.status
    RETURNING r.id, r.task_id, r.payload, r.tags, r.environment_id, r.deployment_id, r.lease_id, r.attempt_count, r.deadline_at, r.runner_id,
              f.environment_slug, f.environment_number, f.project_slug, f.n
  ),
  attempts AS (
    INSERT INTO run_attempts (run_id, number, status, runner_id)
    SELECT id, attempt_count, 'EXECUTING', runner_id FROM moved
  ),
  -- A later attempt of a run whose environment had variables when it was first claimed: its old snapshot goes.
  forgotten AS (
    DELETE FROM run_variables v USING moved m WHERE v.run_id = m.id AND m.attempt_count > 1
  )
  SELECT (SELECT count(*) FROM locked)::int AS locked,
         COALESCE((SELECT json_agg(m ORDER BY m.n) FROM moved m), '[]'::json) AS moved
`;

export async function claimFreshRuns(db: Knex, options: { runnerId: string; limit: number; leaseMs: number; leaseIds: string[]; keyring: boolean }): Promise<{ locked: number; moved: FreshClaim[] }> {
  const result = await db.raw(CLAIM_FRESH_SQL, [options.runnerId, options.limit, !options.keyring, options.runnerId, options.leaseIds, options.leaseMs]);
  const row = result.rows[0] as { locked: number; moved: FreshClaim[] };
  return { locked: row.locked, moved: row.moved };
}
