import knex, { type Knex } from "knex";
import pg from "pg";

// bigint counts (seq, execution_ms) come back as numbers: they stay far below 2^53.
pg.types.setTypeParser(20, (value) => Number(value));

export function connectDatabase(url: string, options: { poolMax?: number } = {}): Knex {
  return knex({
    client: "pg",
    connection: url,
    pool: { min: 0, max: options.poolMax ?? 10 },
  });
}

/** The connection string a knex instance was made with (LISTEN needs its own client). */
export function connectionStringOf(db: Knex): string | pg.ClientConfig {
  const connection = db.client.config.connection as string | pg.ClientConfig;
  return connection;
}
