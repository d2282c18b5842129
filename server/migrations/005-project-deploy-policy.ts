import type { Knex } from "knex";

/**
 * Which refs may deploy a project's non-preview environments through the OIDC exchange:
 * `default_branch` (NULL: `main`) deploys production on push; `deploy_refs` lists more refs per
 * environment (`{"production": ["refs/tags/v*"], "staging": ["refs/heads/develop"]}`).
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    ALTER TABLE projects ADD COLUMN default_branch text;
    ALTER TABLE projects ADD COLUMN deploy_refs jsonb NOT NULL DEFAULT '{}'::jsonb;
  `);
}
