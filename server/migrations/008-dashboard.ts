import type { Knex } from "knex";

/**
 * The dashboard: browser sessions and one-time login tokens (only sha256s stored, like API keys);
 * what a run's timeline shows of each wait (frozen or not, checkpoint size, suspend and resume
 * times, the runner it resumed on); indexes for the run list's filters; and the provenance of a
 * version copied from another environment.
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    -- A session is the principal its sign-in credential was: the admin (environment_id NULL) or one environment.
    CREATE TABLE dashboard_sessions (
      token_hash text PRIMARY KEY,
      kind text NOT NULL CHECK (kind IN ('admin', 'env')),
      environment_id uuid REFERENCES environments(id),
      -- The API key it signed in with: revoking the key ends its sessions.
      api_key_id uuid REFERENCES api_keys(id),
      -- Not a credential alone (useless without the httpOnly cookie); kept so every tab of the session can read it.
      csrf_token text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      CHECK ((kind = 'admin') = (environment_id IS NULL))
    );
    CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

    CREATE TABLE dashboard_login_tokens (
      token_hash text PRIMARY KEY,
      kind text NOT NULL CHECK (kind IN ('admin', 'env')),
      environment_id uuid REFERENCES environments(id),
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      used_at timestamptz
    );

    ALTER TABLE waitpoints ADD COLUMN suspended_at timestamptz;
    ALTER TABLE waitpoints ADD COLUMN checkpoint_bytes bigint;
    ALTER TABLE waitpoints ADD COLUMN resumed_at timestamptz;
    ALTER TABLE waitpoints ADD COLUMN resumed_runner_id text;
    CREATE INDEX waitpoints_run ON waitpoints (run_id, created_at) WHERE run_id IS NOT NULL;

    -- Run list filters, each read newest first by seq (the list's order) without a sort.
    CREATE INDEX runs_list_status ON runs (environment_id, status, seq DESC);
    CREATE INDEX runs_list_task ON runs (environment_id, task_id, seq DESC);
    CREATE INDEX runs_list_version ON runs (deployment_id, seq DESC) WHERE deployment_id IS NOT NULL;
    CREATE INDEX runs_list_tags ON runs USING gin (tags);
    -- Time bounds become seq bounds through this one (seq grows with created_at).
    CREATE INDEX runs_list_created ON runs (environment_id, created_at);
    -- A global index on seq lured the planner into reading every environment's runs newest first
    -- and filtering to one (68 ms for a first page of 25 with 100,000 newer runs elsewhere, against
    -- ~1 ms through runs_list; bench/run-list). Nothing else reads runs by seq alone; seq stays
    -- unique, as its sequence hands out each value once.
    ALTER TABLE runs DROP CONSTRAINT runs_seq_key;

    -- A version copied from another environment (a preview promoted as is): where it came from.
    ALTER TABLE deployments ADD COLUMN copied_from jsonb;
  `);
}
