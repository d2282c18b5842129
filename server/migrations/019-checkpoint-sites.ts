import type { Knex } from "knex";

/**
 * Runners that keep their dumps under one work dir (one host's) share a checkpoint site
 * (runner/checkpoint-site.ts): each restores a dump another of them kept, by a rename, with no fetch.
 *
 * - `runners.checkpoint_site`: the site a runner said it keeps its dumps in (NULL: it keeps none).
 * - The claim's lock (migration 018) lets a runner of the holder's site claim a resume held for that
 *   holder, as the holder itself may: a holder without a free slot no longer keeps it from a runner
 *   beside it that restores the same dump, for the hold's second.
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    ALTER TABLE runners ADD COLUMN checkpoint_site text;
    CREATE OR REPLACE FUNCTION stasis_lock_claimable_runs(p_runner text, p_limit int)
    RETURNS SETOF runs
    LANGUAGE sql VOLATILE
    SET enable_bitmapscan = off
    AS $lock$
      SELECT r.*
      FROM runs r
      WHERE r.status IN ('QUEUED', 'DELAYED', 'RETRYING')
        AND r.available_at <= now()
        AND (r.resume IS NULL OR r.checkpoint_workload IS NULL OR r.checkpoint_workload = (SELECT COALESCE(MAX(w.workload), 'process') FROM runners w WHERE w.id = p_runner))
        AND (r.resume_held_until IS NULL OR r.resume_held_until <= now() OR r.resume_runner_id = p_runner
          OR r.resume_runner_id IN (SELECT s.id FROM runners s JOIN runners me ON me.checkpoint_site = s.checkpoint_site WHERE me.id = p_runner))
      ORDER BY r.available_at, r.seq
      LIMIT p_limit
      FOR UPDATE SKIP LOCKED
    $lock$;
  `);
}
