import type { Knex } from "knex";

/**
 * Webhook subscriptions made with a connection (GitHub repository hooks created with a user's token),
 * and what the expired-state sweep needs.
 *
 * - `webhook_subscriptions`: one hook at the provider per row. The row is written only after the
 *   provider created the hook (and the hook is deleted again when the insert fails); `hook_id` is the
 *   provider's id, `secret_encrypted` the hook's generated signing secret (project data key, AAD binds
 *   it to the subscription id). One subscription per source, connection and repository.
 *   `connection_id` cascades: the code deletes the hooks at the provider before it deletes a connection.
 * - `webhook_deliveries.subscription_id`: which subscription a delivery came through (NULL: the source's own URL).
 * - `oauth_states` / `connect_links` by `expires_at`: the scheduler deletes expired rows in batches.
 * - `connections.refresh_lease(_until)`: the refresh lease (compare-and-set) that makes a refresh one
 *   across replicas without a row lock held while the provider is asked.
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    CREATE TABLE webhook_subscriptions (
      id text PRIMARY KEY,
      environment_id uuid NOT NULL REFERENCES environments(id),
      source_id text NOT NULL,
      connection_id uuid NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
      provider text NOT NULL CHECK (provider IN ('github')),
      repository text NOT NULL,
      events text[] NOT NULL,
      hook_id bigint NOT NULL,
      secret_encrypted bytea NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (environment_id, source_id, connection_id, repository)
    );
    CREATE INDEX webhook_subscriptions_connection ON webhook_subscriptions (connection_id);

    ALTER TABLE webhook_deliveries ADD COLUMN subscription_id text;

    CREATE INDEX oauth_states_expires ON oauth_states (expires_at);
    CREATE INDEX connect_links_expires ON connect_links (expires_at);

    ALTER TABLE connections ADD COLUMN refresh_lease uuid, ADD COLUMN refresh_lease_until timestamptz;
  `);
}
