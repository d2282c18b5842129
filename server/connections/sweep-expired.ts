import type { Knex } from "knex";

/** Rows per DELETE: each batch is a short statement, so a backlog never holds long locks. */
export const SWEEP_BATCH = 500;
/** At most this many batches per table per sweep; the rest waits for the next sweep. */
const MAX_BATCHES = 20;

/**
 * Deletes `oauth_states` and `connect_links` whose expiry is more than `retentionMs` past. They are
 * kept that long after expiring so a late callback or link still gets "expired" (not "unknown").
 * Each batch picks its rows by the `expires_at` index with SKIP LOCKED: replicas sweeping at the same
 * time take different rows, and a state being claimed right now is left alone.
 */
export async function sweepExpiredConnectRows(db: Knex, retentionMs: number, batch = SWEEP_BATCH): Promise<{ states: number; links: number }> {
  const seconds = Math.max(0, retentionMs) / 1000;
  const sweepTable = async (table: "oauth_states" | "connect_links", key: "state_hash" | "token_hash"): Promise<number> => {
    let total = 0;
    for (let i = 0; i < MAX_BATCHES; i++) {
      const result = await db.raw(
        `DELETE FROM ${table} WHERE ${key} IN (
           SELECT ${key} FROM ${table} WHERE expires_at < now() - make_interval(secs => ?) ORDER BY expires_at LIMIT ? FOR UPDATE SKIP LOCKED
         )`,
        [seconds, batch],
      );
      const deleted = result.rowCount ?? 0;
      total += deleted;
      if (deleted < batch) break;
    }
    return total;
  };
  return { states: await sweepTable("oauth_states", "state_hash"), links: await sweepTable("connect_links", "token_hash") };
}
