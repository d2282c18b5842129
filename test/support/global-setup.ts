// Starts what every test file shares: one PostgreSQL server (embedded, or the one DATABASE_URL
// names — then nothing embedded starts) and one migrated template database that test files clone.
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { connectDatabase, migrate, startEmbeddedPostgres } from "../../server/index.ts";

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
    templateDatabase: string;
  }
}

export function databaseUrlFor(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let adminUrl = process.env.DATABASE_URL;
  let stopEmbedded: (() => Promise<void>) | null = null;
  let dataRoot: string | null = null;
  if (!adminUrl) {
    dataRoot = await mkdtemp(path.join(tmpdir(), "stasis-test-pg-"));
    await chmod(dataRoot, 0o755); // PostgreSQL runs as the postgres user and must reach its data dir
    const pg = await startEmbeddedPostgres({ dataDir: path.join(dataRoot, "data"), unsafeFast: true });
    adminUrl = pg.url;
    stopEmbedded = pg.stop;
  }
  const template = `stasis_template_${process.pid}_${Date.now().toString(36)}`;
  const admin = connectDatabase(adminUrl, { poolMax: 1 });
  await admin.raw(`CREATE DATABASE "${template}"`);
  const tdb = connectDatabase(databaseUrlFor(adminUrl, template), { poolMax: 2 });
  try {
    await migrate(tdb);
  } finally {
    await tdb.destroy();
  }
  project.provide("databaseUrl", adminUrl);
  project.provide("templateDatabase", template);

  return async () => {
    await admin.raw(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`).catch(() => {});
    await admin.destroy();
    if (stopEmbedded) await stopEmbedded();
    if (dataRoot) await rm(dataRoot, { recursive: true, force: true });
  };
}
