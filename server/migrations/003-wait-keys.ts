import type { Knex } from "knex";

/**
 * Waits a run can find again. A run's waits are keyed (`#<n>`: its n-th wait, counted by the SDK in
 * the task process; or a key the task gave), so an attempt that re-executes code — from an older
 * checkpoint or from the start — gets the waitpoint (and the result already delivered to it) that
 * the lost attempt created, instead of waiting again for an event nobody will send twice.
 *
 * `waitpoint_tokens`: more URLs for one request waitpoint. Only hashes of request tokens are stored,
 * so a re-executed `wait.forRequest` cannot be handed the first URL again; it gets a new one that
 * completes the same waitpoint (whoever holds the first URL can still use it).
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    ALTER TABLE waitpoints ADD COLUMN wait_key text;
    CREATE UNIQUE INDEX waitpoints_run_wait_key ON waitpoints (run_id, wait_key);
    -- A final run's waitpoints still PENDING are canceled (no event may be counted as delivered to it).
    CREATE INDEX waitpoints_run_pending ON waitpoints (run_id) WHERE status = 'PENDING';

    CREATE TABLE waitpoint_tokens (
      token_hash text PRIMARY KEY,
      waitpoint_id text NOT NULL REFERENCES waitpoints(id),
      created_at timestamptz NOT NULL DEFAULT now()
    );
  `);
}
