import type { Knex } from "knex";

/**
 * What the server records of a run's current checkpoint besides its location: the sha256 of the
 * stored bytes (reported with the suspend; a resuming runner refuses anything else) and the
 * checkpoint's own AES-256 key, wrapped by the project's data key (AAD: project, run, location).
 */
export async function up(trx: Knex.Transaction): Promise<void> {
  await trx.raw(`
    ALTER TABLE runs ADD COLUMN checkpoint_sha256 text;
    ALTER TABLE runs ADD COLUMN checkpoint_key bytea;
  `);
}
