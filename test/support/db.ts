// A fresh database per test file, cloned from the migrated template the global setup made.
import { randomBytes } from "node:crypto";
import type { Knex } from "knex";
import { inject } from "vitest";
import { connectDatabase } from "../../server/index.ts";
import { databaseUrlFor } from "./global-setup.ts";

export interface TestDatabase {
  url: string;
  db: Knex;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = inject("databaseUrl");
  const template = inject("templateDatabase");
  const name = `stasis_test_${randomBytes(6).toString("hex")}`;
  const admin = connectDatabase(adminUrl, { poolMax: 1 });
  try {
    await admin.raw(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
  } finally {
    await admin.destroy();
  }
  const url = databaseUrlFor(adminUrl, name);
  const db = connectDatabase(url);
  return {
    url,
    db,
    async drop() {
      await db.destroy();
      const again = connectDatabase(adminUrl, { poolMax: 1 });
      try {
        await again.raw(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await again.destroy();
      }
    },
  };
}
