import type { Knex } from "knex";

/**
 * Short-lived deploy tokens (minted from a CI's OIDC token or an environment API key), scoped to one
 * environment. Only the sha256 is stored; expired rows stay a day so a late caller hears "expired".
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    CREATE TABLE deploy_tokens (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      environment_id uuid NOT NULL REFERENCES environments(id),
      token_hash text NOT NULL UNIQUE,
      issued_via text NOT NULL CHECK (issued_via IN ('oidc', 'api-key')),
      subject text,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL
    );
    CREATE INDEX deploy_tokens_expires ON deploy_tokens (expires_at);
  `);
}
