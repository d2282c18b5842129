// The raw floor under "triggers per second": durable commits per second on this machine's disk, one
// INSERT in autocommit per commit (synchronous_commit = on, fsync = on, the server's defaults), from
// 1 client and from `clients` clients at once (PostgreSQL flushes the WAL of commits that wait
// together in one fsync). Same PostgreSQL server and run as the systems measured.
import pg from "pg";

export interface CommitCeiling {
  clients: number;
  commitsPerSecond: number;
}

export async function commitCeiling(databaseUrl: string, clientCounts: number[], ms = 2000): Promise<CommitCeiling[]> {
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query("CREATE TABLE IF NOT EXISTS bench_commits (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())");
  const out: CommitCeiling[] = [];
  try {
    for (const n of clientCounts) {
      const clients = await Promise.all(
        Array.from({ length: n }, async () => {
          const c = new pg.Client({ connectionString: databaseUrl });
          await c.connect();
          return c;
        }),
      );
      let commits = 0;
      const start = performance.now();
      const end = start + ms;
      await Promise.all(
        clients.map(async (c) => {
          while (performance.now() < end) {
            await c.query("INSERT INTO bench_commits DEFAULT VALUES");
            commits++;
          }
        }),
      );
      out.push({ clients: n, commitsPerSecond: commits / ((performance.now() - start) / 1000) });
      await Promise.all(clients.map((c) => c.end()));
    }
  } finally {
    await admin.query("DROP TABLE bench_commits").catch(() => {});
    await admin.end();
  }
  return out;
}
