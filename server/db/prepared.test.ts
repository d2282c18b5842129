import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/db.ts";
import { connectDatabase } from "./connect.ts";
import { hotQuery } from "./prepared.ts";

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

/** One connection, so the statements a test prepares are the ones it then looks at. */
async function withOneConnection(body: (db: ReturnType<typeof connectDatabase>) => Promise<void>) {
  const db = connectDatabase(database.url, { poolMax: 1 });
  try {
    await body(db);
  } finally {
    await db.destroy();
  }
}

/** A table holding `values` (its rows as SQL tuples) for a test to prepare statements over. */
async function tableOf(db: ReturnType<typeof connectDatabase>, name: string, columns: string, values: string) {
  await db.raw(`CREATE TABLE ${name} (${columns})`);
  await db.raw(`INSERT INTO ${name} VALUES ${values}`);
}

const prepared = async (db: ReturnType<typeof connectDatabase>) => (await db.raw<{ rows: Array<{ name: string }> }>("SELECT name FROM pg_prepared_statements")).rows.map((r) => r.name);

describe("hot statements as named prepared statements", () => {
  it("are prepared once per connection and answer as the same statement unnamed", async () => {
    await withOneConnection(async (db) => {
      await tableOf(db, "hot_a", "n int, label text", "(1, 'one'), (2, 'two'), (3, 'three')");
      const sql = "SELECT label FROM hot_a WHERE n = ANY(?::int[]) ORDER BY n";
      const first = await hotQuery<{ label: string }>(db, "test_hot_a", sql, [[1, 3]]);
      const second = await hotQuery<{ label: string }>(db, "test_hot_a", sql, [[2]]);
      expect(first.rows.map((r) => r.label)).toEqual(["one", "three"]);
      expect(second.rows.map((r) => r.label)).toEqual(["two"]);
      expect((await db.raw<{ rows: Array<{ label: string }> }>(sql, [[1, 3]])).rows).toEqual(first.rows);
      expect(await prepared(db)).toEqual(["test_hot_a"]);
      // Inside a transaction too, on the transaction's connection.
      await db.transaction(async (trx) => expect((await hotQuery<{ label: string }>(trx, "test_hot_a", sql, [[3]])).rows).toEqual([{ label: "three" }]));
    });
  });

  it("answers when a migration changed the columns a prepared statement returns, and that database goes unnamed from then on", async () => {
    await withOneConnection(async (db) => {
      await tableOf(db, "hot_b", "n int", "(1)");
      expect((await hotQuery(db, "test_hot_b", "SELECT * FROM hot_b", [])).rows).toEqual([{ n: 1 }]);
      await db.raw("ALTER TABLE hot_b ADD COLUMN label text DEFAULT 'added'");
      // PostgreSQL refuses the prepared one ("cached plan must not change result type"); the call is answered unnamed.
      expect((await hotQuery(db, "test_hot_b", "SELECT * FROM hot_b", [])).rows).toEqual([{ n: 1, label: "added" }]);
      expect((await hotQuery(db, "test_hot_b_other", "SELECT count(*)::int AS c FROM hot_b", [])).rows).toEqual([{ c: 1 }]);
      expect(await prepared(db)).not.toContain("test_hot_b_other");
    });
  });

  it("inside a transaction, the refused statement fails that transaction, and the retry goes through unnamed", async () => {
    await withOneConnection(async (db) => {
      await tableOf(db, "hot_c", "n int", "(1)");
      await hotQuery(db, "test_hot_c", "SELECT * FROM hot_c", []);
      await db.raw("ALTER TABLE hot_c ADD COLUMN m int DEFAULT 2");
      const attempt = () => db.transaction(async (trx) => (await hotQuery(trx, "test_hot_c", "SELECT * FROM hot_c", [])).rows);
      await expect(attempt()).rejects.toThrow(/cached plan must not change result type/);
      expect(await attempt()).toEqual([{ n: 1, m: 2 }]);
    });
  });

  it("refuses one name for two statements, on every connection (pg would refuse it only where the first was prepared)", async () => {
    await withOneConnection(async (db) => {
      await hotQuery(db, "test_hot_name", "SELECT 1 AS one", []);
      await expect(hotQuery(db, "test_hot_name", "SELECT 2 AS two", [])).rejects.toThrow(/test_hot_name is already used for another statement/);
    });
  });

  it("answers when the connection does not hold the statement it prepared (a pooler in transaction mode hands out another one)", async () => {
    await withOneConnection(async (db) => {
      await tableOf(db, "hot_d", "n int", "(4)");
      await hotQuery(db, "test_hot_d", "SELECT n FROM hot_d", []);
      // What a pooler does: the next call lands on a server connection that never saw the statement.
      await db.raw("DEALLOCATE test_hot_d");
      expect((await hotQuery(db, "test_hot_d", "SELECT n FROM hot_d", [])).rows).toEqual([{ n: 4 }]);
    });
  });
});
