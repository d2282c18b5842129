import type { Knex } from "knex";

/**
 * Connections: OAuth (or API-key) accounts Stasis keeps for an environment, and refreshes.
 *
 * - `integrations`: one provider per environment and slug; its client id and secret are encrypted
 *   under the project's data key like environment variables (AAD binds them to environment and slug).
 * - `connections`: the tokens of one account, per integration and `external_id` ('' is the team's own
 *   connection, made from the dashboard); tokens encrypted, AAD binds them to integration and external id.
 * - `oauth_states`: one row per started authorization (state hashed, PKCE verifier encrypted); used once
 *   (compare-and-set on `used_at`) before it expires.
 * - `connect_links`: one-time links an app hands to its users (token hashed); used once, before expiry.
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    CREATE TABLE integrations (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      environment_id uuid NOT NULL REFERENCES environments(id),
      slug text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
      kind text NOT NULL CHECK (kind IN ('oauth', 'api_key')),
      provider text NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}',
      scopes text[] NOT NULL DEFAULT '{}',
      client_id_encrypted bytea,
      client_secret_encrypted bytea,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (environment_id, slug)
    );

    CREATE TABLE connections (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      integration_id uuid NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
      external_id text NOT NULL DEFAULT '',
      account text,
      scopes text[] NOT NULL DEFAULT '{}',
      access_token_encrypted bytea NOT NULL,
      refresh_token_encrypted bytea,
      obtained_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz,
      last_refresh_at timestamptz,
      refresh_count integer NOT NULL DEFAULT 0,
      status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'broken')),
      broken_reason text,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (integration_id, external_id)
    );

    CREATE TABLE oauth_states (
      state_hash text PRIMARY KEY,
      integration_id uuid NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
      external_id text NOT NULL DEFAULT '',
      redirect_to text,
      verifier_encrypted bytea NOT NULL,
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    );

    -- Which connections' tokens each run was handed: the server redacts their current values from the run's log lines.
    CREATE TABLE run_connections (
      run_id text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
      connection_id uuid NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
      PRIMARY KEY (run_id, connection_id)
    );

    CREATE TABLE connect_links (
      token_hash text PRIMARY KEY,
      integration_id uuid NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
      external_id text NOT NULL CHECK (external_id <> ''),
      redirect_to text NOT NULL,
      expires_at timestamptz NOT NULL,
      used_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now()
    );
  `);
}
