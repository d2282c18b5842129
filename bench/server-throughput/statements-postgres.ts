// The benches' embedded PostgreSQL, with pg_stat_statements loaded when asked for (`--statements`):
// the library is preloaded at server start, so the server is started, told, and started again.
import pg from "pg";
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from "../../server/index.ts";

export async function startBenchPostgres(dataDir: string, options: { statements: boolean }): Promise<EmbeddedPostgresHandle> {
  const postgres = await startEmbeddedPostgres({ dataDir });
  if (!options.statements) return postgres;
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
  await admin.end();
  await postgres.stop();
  return await startEmbeddedPostgres({ dataDir });
}
