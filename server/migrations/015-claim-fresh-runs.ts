import type { Knex } from "knex";

/**
 * The one-statement claim (server/sql/claim-fresh-runs.ts) as a function, for one planner setting:
 * `enable_bitmapscan = off` while it runs. Right after a burst is queued the statistics of `runs`
 * still say the claimable partial index is nearly empty, and the planner then read every due run
 * with a bitmap scan and sorted them all to lock the first 25 (EXPLAIN ANALYZE, 3,000 queued: 1.7 ms
 * for the lock, growing with the queue) instead of walking `runs_claimable` in (available_at, seq)
 * order and stopping at the limit (0.15 ms). A function's SET clause is the one way to scope that to
 * this statement without a transaction of its own (SET LOCAL needs BEGIN and COMMIT round trips,
 * which this claim exists to avoid); other queries keep bitmap scans (the tags GIN index needs them).
 * Returns how many rows it locked and the moved runs as JSON, in queue order. Later changes:
 * CREATE OR REPLACE in a new migration.
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    CREATE FUNCTION stasis_claim_fresh_runs(p_runner text, p_limit int, p_no_keyring boolean, p_lease_ids text[], p_lease_ms int)
    RETURNS TABLE (locked int, moved json)
    LANGUAGE sql VOLATILE
    SET enable_bitmapscan = off
    AS $claim$
    WITH locked AS MATERIALIZED (
      SELECT r.id, r.status, r.task_id, r.deployment_id, r.environment_id, r.resume, r.max_duration_s, r.available_at, r.seq
      FROM runs r
      WHERE r.status IN ('QUEUED', 'DELAYED', 'RETRYING')
        AND r.available_at <= now()
        AND (r.resume IS NULL OR r.checkpoint_workload IS NULL OR r.checkpoint_workload = (SELECT COALESCE(MAX(w.workload), 'process') FROM runners w WHERE w.id = p_runner))
      ORDER BY r.available_at, r.seq
      LIMIT p_limit
      FOR UPDATE SKIP LOCKED
    ),
    placed AS (
      SELECT l.*, e.slug AS environment_slug, e.number AS environment_number, p.slug AS project_slug,
             COALESCE(l.deployment_id, CASE WHEN l.task_id = ANY(pd.tasks) THEN pd.id END) AS target_deployment_id,
             (p_no_keyring OR NOT EXISTS (SELECT 1 FROM environment_variables v WHERE v.project_id = p.id AND (v.scope = e.slug OR (e.slug LIKE 'preview/%' AND v.scope = 'preview')))) AS no_variables,
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
          runner_id = p_runner,
          lease_id = p_lease_ids[f.n],
          lease_expires_at = now() + make_interval(secs => p_lease_ms / 1000.0),
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
    $claim$;
  `);
}
