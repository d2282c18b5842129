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
/** One text per name: pg refuses a name reused for another text on a connection that prepared it, and only there. */
const statementTexts = new Map<string, string>();
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
  const named = statementTexts.get(name);
  if (named === undefined) statementTexts.set(name, sql);
  else if (named !== sql) throw new Error(`prepared statement name ${name} is already used for another statement`);
  const database = db.client.config as object;
  if (!namedByDefault || unnamedOnly.has(database)) return await db.raw(sql, bindings as Knex.RawBinding[]);
  try {
    return await db.raw(sql, bindings as Knex.RawBinding[]).options({ name });
  } catch (error) {
    if (!unusablePreparedStatement(error)) throw error;
    unnamedOnly.add(database);
    process.emitWarning(`PostgreSQL refused the prepared statement ${name} (${(error as Error).message.split("\n").pop()}); this database gets unnamed statements from now on`, { code: "STASIS_UNNAMED_STATEMENTS" });
    if ((db as Partial<Knex.Transaction>).isTransaction) throw error;
    return await db.raw(sql, bindings as Knex.RawBinding[]);
  }
}
