// A fingerprint of every table, taken between requests: a refused request must leave it unchanged.
import type { Knex } from "knex";

export type Snapshot = Map<string, { rows: number; sum: string }>;

/**
 * Per table: the row count and an md5 over each live row's (xmin, ctid). Every INSERT and UPDATE
 * writes a tuple with a new xmin, and a DELETE changes the count or a ctid, so any committed change
 * shows — without reading (and detoasting) the megabyte payloads the fuzzer stores, which an md5 over
 * `t::text` would re-read on every request. Row locks (`FOR UPDATE`) and rolled-back writes do not
 * show, as they change no row.
 */
export async function createSnapshotter(db: Knex): Promise<() => Promise<Snapshot>> {
  const tables = (
    await db.raw<{ rows: Array<{ name: string }> }>(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`)
  ).rows.map((r) => r.name);
  const sql = tables
    .map((t) => `SELECT '${t}' AS name, count(*)::int AS rows, coalesce(md5(string_agg(t.xmin::text || t.ctid::text, ',' ORDER BY t.ctid)), '') AS sum FROM "${t}" t`)
    .join(" UNION ALL ");
  // Any INSERT, UPDATE or DELETE takes a transaction id. When the database's snapshot is the same
  // as before the last fingerprint (no id assigned since) and none was in progress then, no row can
  // have changed and that fingerprint still holds: most refused requests only read, and the full
  // fingerprint was ~40 % of the fuzzer's time.
  let last: { xids: string; snapshot: Snapshot } | null = null;
  const currentXids = async () => (await db.raw<{ rows: Array<{ xids: string; idle: boolean }> }>("SELECT s::text AS xids, pg_snapshot_xmin(s) = pg_snapshot_xmax(s) AS idle FROM pg_current_snapshot() s")).rows[0];
  return async () => {
    const before = await currentXids();
    if (before.idle && last?.xids === before.xids) return last.snapshot;
    const { rows } = await db.raw<{ rows: Array<{ name: string; rows: number; sum: string }> }>(sql);
    const snapshot: Snapshot = new Map(rows.map((r) => [r.name, { rows: r.rows, sum: r.sum }]));
    last = before.idle ? { xids: before.xids, snapshot } : null;
    return snapshot;
  };
}

/** Tables whose fingerprint differs, with their row counts. */
export function changedTables(before: Snapshot, after: Snapshot): string[] {
  const out: string[] = [];
  for (const [name, b] of before) {
    const a = after.get(name);
    if (!a || a.sum !== b.sum || a.rows !== b.rows) out.push(`${name} (rows ${b.rows} → ${a?.rows ?? "gone"})`);
  }
  return out;
}

/** Rows in the whole database (for the report). */
export function totalRows(s: Snapshot): number {
  let n = 0;
  for (const v of s.values()) n += v.rows;
  return n;
}
