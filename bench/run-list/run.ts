// The run list's server time with 100,000 runs in an environment (and as many in another one),
// without and with each filter, first pages and a deep cursor page: the dashboard's list and
// `stasis runs list` both call GET /api/v1/runs.
// Usage: npx tsx bench/run-list/run.ts [--runs 100000] [--samples 30] [--json]
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { connectDatabase, createServer, ensureProject, migrate, startEmbeddedPostgres } from "../../server/index.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "100000" }, samples: { type: "string", default: "30" }, json: { type: "boolean", default: false } } });
const [runs, samples] = [Number(values.runs), Number(values.samples)];
const ADMIN = "bench-admin-token-0123456789";

const dir = await mkdtemp(join(tmpdir(), "stasis-bench-run-list-"));
await chmod(dir, 0o755);
console.error("bench: starting PostgreSQL");
const postgres = await startEmbeddedPostgres({ dataDir: join(dir, "pg"), unsafeFast: true });
const admin = connectDatabase(postgres.url, { poolMax: 1 });
await admin.raw("CREATE DATABASE stasis_run_list");
await admin.destroy();
const db = connectDatabase(postgres.url.replace(/\/postgres$/, "/stasis_run_list"));
const results: Array<{ case: string; rows: number; p50: number; p95: number; max: number }> = [];
try {
  await migrate(db);
  const project = await ensureProject(db, { slug: "bench" });
  const key = project.keys.find((k) => k.environment === "production")!.apiKey;
  const envs = await db("environments").where({ project_id: project.projectId }).select("id", "slug");
  const production = envs.find((e) => e.slug === "production")!.id;
  const staging = envs.find((e) => e.slug === "staging")!.id;

  console.error(`bench: inserting ${runs} runs into production and ${runs} into staging`);
  for (const env of [production, staging]) {
    const [v1, v2] = await db("deployments")
      .insert([1, 2].map((n) => ({ environment_id: env, version: `20261130.${n}`, version_date: 20261130, version_n: n, status: "DEPLOYED", tasks: ["a", "b", "c", "d", "e"] })))
      .returning("id");
    // 7 days of runs, oldest first; 5 tasks; 1 % FAILED, 1 % EXECUTING, the rest COMPLETED; 1 in 1,000 tagged "rare".
    await db.raw(
      `INSERT INTO runs (id, environment_id, task_id, status, payload, deployment_id, tags, created_at, completed_at, attempt_count)
       SELECT 'run_bench_' || ? || '_' || g, ?, (ARRAY['a','b','c','d','e'])[1 + g % 5],
              CASE WHEN g % 100 = 7 THEN 'FAILED' WHEN g % 100 = 8 THEN 'EXECUTING' ELSE 'COMPLETED' END,
              jsonb_build_object('n', g), CASE WHEN g % 2 = 0 THEN ?::uuid ELSE ?::uuid END,
              CASE WHEN g % 1000 = 0 THEN ARRAY['rare', 'all'] ELSE ARRAY['all'] END,
              now() - interval '7 days' + (g * interval '7 days' / ?), now() - interval '7 days' + (g * interval '7 days' / ?), 1
       FROM generate_series(1, ?) g`,
      [env === production ? "p" : "s", env, v1.id, v2.id, runs, runs, runs],
    );
  }
  // What autovacuum does soon after a bulk load (it also empties the GIN index's pending list).
  await db.raw("VACUUM ANALYZE runs");

  const server = await createServer({ db, adminToken: ADMIN, runnerToken: `${ADMIN}-runner`, logger: false });
  try {
    const middle = await db("runs").where({ environment_id: production }).orderBy("seq", "desc").offset(Math.floor(runs / 2)).first("id", "created_at");
    const day = new Date(middle.created_at.getTime());
    const cases: Array<[string, string]> = [
      ["no filter, first page (25)", ""],
      ["no filter, 200 rows", "limit=200"],
      [`no filter, page after run ${Math.floor(runs / 2)} (cursor)`, `cursor=${middle.id}`],
      ["status=FAILED (1 %)", "status=FAILED"],
      ["status=EXECUTING (1 %), deep cursor", `status=EXECUTING&cursor=${middle.id}`],
      ["task=c (20 %)", "task=c"],
      ["tag=rare (0.1 %)", "tag=rare"],
      ["version=20261130.1 (50 %)", "version=20261130.1"],
      ["one day in the middle (from/to)", `from=${new Date(day.getTime() - 12 * 3600_000).toISOString()}&to=${new Date(day.getTime() + 12 * 3600_000).toISOString()}`],
      ["task=c & status=FAILED & version", "task=c&status=FAILED&version=20261130.2"],
    ];
    for (const [name, query] of cases) {
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < samples + 3; i++) {
        const started = process.hrtime.bigint();
        const response = await server.app.inject({ method: "GET", url: `/api/v1/runs?${query}`, headers: { authorization: `Bearer ${key}` } });
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        if (response.statusCode !== 200) throw new Error(`${name}: ${response.statusCode} ${response.body}`);
        rows = response.json().data.length;
        if (i >= 3) times.push(ms); // the first three warm the caches and the plan
      }
      times.sort((a, b) => a - b);
      results.push({ case: name, rows, p50: times[Math.floor(times.length / 2)], p95: times[Math.floor(times.length * 0.95)], max: times[times.length - 1] });
      console.error(`bench: ${name}: p50 ${results.at(-1)!.p50.toFixed(1)} ms`);
    }
  } finally {
    await server.close();
  }
} finally {
  await db.destroy();
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}

if (values.json) console.log(JSON.stringify({ runs, samples, results }, null, 2));
else {
  const rows = [["case", "rows", "p50", "p95", "max"], ...results.map((r) => [r.case, String(r.rows), `${r.p50.toFixed(1)} ms`, `${r.p95.toFixed(1)} ms`, `${r.max.toFixed(1)} ms`])];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ")).join("\n"));
  console.log(`\n${runs} runs in the environment listed (and ${runs} in another); server time through app.inject, ${samples} samples each.`);
}
