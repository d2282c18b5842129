import type { Knex } from "knex";

const DEADLOCK = "40P01";
const SERIALIZATION = "40001";

/**
 * A transaction that is retried when PostgreSQL aborts it as a deadlock victim. Lock order is
 * waitpoint → run → child runs where we can, but a parent's cancel and a child's completion
 * meet from opposite ends; the loser is rolled back whole, so running it again is safe.
 */
export async function inTransaction<T>(db: Knex, fn: (trx: Knex.Transaction) => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(fn);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if ((code !== DEADLOCK && code !== SERIALIZATION) || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5 * attempt + Math.random() * 20));
    }
  }
}
