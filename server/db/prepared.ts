import type { Knex } from "knex";

/**
 * PostgreSQL's answers that a connection's named statement cannot be used: it does not exist there
 * (a pooler in transaction mode hands out another server connection), it exists already, or a
 * migration changed the columns it returns ("cached plan must not change result type").
 */
function unusablePreparedStatement(error: unknown): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === "26000" || code === "42P05" || (code === "0A000" && /cached plan/.test(message ?? ""));
}

/** Databases (by their knex config, which a transaction shares) where named statements turned out unusable. */
const unnamedOnly = new WeakSet<object>();
const namedByDefault = process.env.STASIS_PREPARED_STATEMENTS !== "off";

/**
 * A hot statement as a named prepared statement: each pooled connection parses and plans it once,
 * not on every call (half of PostgreSQL's CPU per trigger went to that: bench/server-throughput,
 * ninth round). `name` must be unique per `sql`. Where a named statement cannot be used, that
 * database gets unnamed ones from then on; in autocommit the statement is retried unnamed at once,
 * in a transaction the error stands (the transaction is aborted) and the caller's retry goes unnamed.
 * `STASIS_PREPARED_STATEMENTS=off` turns them off (a comparison in the benches).
 */
export async function hotQuery<R>(db: Knex | Knex.Transaction, name: string, sql: string, bindings: readonly unknown[]): Promise<{ rows: R[] }> {
  const database = db.client.config as object;
  if (!namedByDefault || unnamedOnly.has(database)) return await db.raw(sql, bindings as Knex.RawBinding[]);
  try {
    return await db.raw(sql, bindings as Knex.RawBinding[]).options({ name });
  } catch (error) {
    if (!unusablePreparedStatement(error)) throw error;
    unnamedOnly.add(database);
    if ((db as Partial<Knex.Transaction>).isTransaction) throw error;
    return await db.raw(sql, bindings as Knex.RawBinding[]);
  }
}
