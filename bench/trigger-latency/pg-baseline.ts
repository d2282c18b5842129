// The floor under every figure here: one PostgreSQL round trip and one durable commit on this
// machine's disk, measured on the same server in the same run as the systems (graphile-worker pays
// them as Stasis does). A commit is an INSERT in autocommit into an ordinary (WAL-logged) table with
// the server's default synchronous_commit = on and fsync = on.
import pg from "pg";
import { summarize, type LatencySummary } from "./stats.ts";

export interface PgBaseline {
  roundTrip: LatencySummary;
  commit: LatencySummary;
}

export async function measurePgBaseline(databaseUrl: string, samples = 300): Promise<PgBaseline> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query("CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
    const time = async (query: string) => {
      const values: number[] = [];
      for (let i = 0; i < samples; i++) {
        const t = performance.now();
        await client.query(query);
        values.push(performance.now() - t);
      }
      return summarize(values);
    };
    const roundTrip = await time("SELECT 1");
    const commit = await time("INSERT INTO bench_commit DEFAULT VALUES");
    await client.query("DROP TABLE bench_commit");
    return { roundTrip, commit };
  } finally {
    await client.end();
  }
}

export function formatPgBaseline(b: PgBaseline): string {
  const f = (v: number) => `${v.toFixed(2)} ms`;
  return `PostgreSQL on this machine, same server and run: round trip (SELECT 1) p50 ${f(b.roundTrip.p50)}, p99 ${f(b.roundTrip.p99)}; durable commit (INSERT, autocommit) p50 ${f(b.commit.p50)}, p99 ${f(b.commit.p99)}`;
}
