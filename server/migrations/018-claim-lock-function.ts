import type { Knex } from "knex";

/**
 * The full claim's lock (server/sql/claim-runs.ts) as a function, for the one planner setting the
 * one-statement claim already runs with (migration 015): `enable_bitmapscan = off`. Right after a
 * burst is queued the statistics of `runs` still say the claimable partial index is nearly empty,
 * and the planner then read every due run with a bitmap scan and sorted them all to lock the first
 * 25 (EXPLAIN ANALYZE, 3,000 queued: 3.4–10.5 ms, growing with the queue) instead of walking
 * `runs_claimable` in (available_at, seq) order and stopping at the limit. Every claim of a run in
 * an environment with variables, and every resume, goes through this lock.
 *
 * `SETOF runs`: the body's `r.*` is read again by each session, so a later column comes along.
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    CREATE FUNCTION stasis_lock_claimable_runs(p_runner text, p_limit int)
    RETURNS SETOF runs
    LANGUAGE sql VOLATILE
    SET enable_bitmapscan = off
    AS $lock$
      SELECT r.*
      FROM runs r
      WHERE r.status IN ('QUEUED', 'DELAYED', 'RETRYING')
        AND r.available_at <= now()
        AND (r.resume IS NULL OR r.checkpoint_workload IS NULL OR r.checkpoint_workload = (SELECT COALESCE(MAX(w.workload), 'process') FROM runners w WHERE w.id = p_runner))
        AND (r.resume_held_until IS NULL OR r.resume_held_until <= now() OR r.resume_runner_id = p_runner)
      ORDER BY r.available_at, r.seq
      LIMIT p_limit
      FOR UPDATE SKIP LOCKED
    $lock$;
  `);
}
