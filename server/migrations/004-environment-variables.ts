import type { Knex } from "knex";

/**
 * Environment variables, encrypted at rest. Each project has one random data key, stored only
 * wrapped (AES-256-GCM) by the server's master key, with the master key's id (a key check value)
 * so a start with the wrong key is refused and a rotation knows what is left to re-wrap. Values are
 * AES-256-GCM under the data key with the project, scope and name as AAD.
 *
 * `scope` is an environment slug, or `preview` for the set every `preview/*` environment inherits
 * (a preview's own rows override it per name). `run_variables` keeps what each run's process got.
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    CREATE TABLE project_data_keys (
      project_id uuid PRIMARY KEY REFERENCES projects(id),
      master_key_id text NOT NULL,
      wrapped_key bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      rotated_at timestamptz
    );

    CREATE TABLE environment_variables (
      project_id uuid NOT NULL REFERENCES projects(id),
      scope text NOT NULL CHECK (scope ~ '^(production|staging|development|preview|preview/[a-zA-Z0-9._-]{1,100})$'),
      name text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]*$' AND name NOT LIKE 'STASIS\\_%'),
      value_encrypted bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (project_id, scope, name)
    );

    -- The variables a run's current process was started with (encrypted as one JSON under the
    -- project's data key): a resume from a checkpoint gets these, not the current ones — the
    -- restored process still holds them — so the runner redacts what the process can print.
    CREATE TABLE run_variables (
      run_id text PRIMARY KEY REFERENCES runs(id),
      project_id uuid NOT NULL REFERENCES projects(id),
      attempt integer NOT NULL,
      snapshot bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
  `);
}
