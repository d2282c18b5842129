import type { Knex } from "knex";

/**
 * A resume goes first to the runner that holds the checkpoint's dump on its own disk (it restores
 * without fetching and unpacking the sealed copy: bench/suspend-resume).
 *
 * - `checkpoint_runner_id`: the runner that took the run's checkpoint (NULL: a hand-over's, taken by a
 *   runner that is leaving, or one taken before this migration).
 * - `resume_runner_id`, `resume_held_until`: while a queued resume is held for that runner, other
 *   runners skip it (sql/claim-runs.ts); after `resume_held_until` anyone may claim it, and the
 *   scheduler wakes the runners' polls then. The partial index keeps the scheduler's earliest-hold
 *   lookup off the rest of the runs.
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    ALTER TABLE runs ADD COLUMN checkpoint_runner_id text;
    ALTER TABLE runs ADD COLUMN resume_runner_id text;
    ALTER TABLE runs ADD COLUMN resume_held_until timestamptz;
    CREATE INDEX runs_resume_held ON runs (resume_held_until) WHERE status = 'QUEUED' AND resume_held_until IS NOT NULL;
  `);
}
