// The server alone (app.inject: no HTTP, no runner, no task process) beside graphile-worker, on one
// embedded PostgreSQL in one run: triggers/s, batchTrigger of 1,000, claim+complete/s.
// Usage: npx tsx bench/server-throughput/run.ts [--triggers 3000] [--runs 3000] [--batch 1000]
//          [--concurrency 16] [--runners 4] [--slots 25] [--replicas 1] [--warmup 0] [--variables] [--statements] [--json]
// --warmup N: N triggers, claimed and completed, before anything is measured (a server that has run a
// while: its JIT has compiled the hot paths; a short run measures mostly the warm-up).
// --replicas N: N server replicas on the one database (this thread and N − 1 worker threads, each its
// own event loop), the triggers and the simulated runners shared among them.
// --variables: the environment has a variable, so every claim takes the full path (decrypt, snapshot)
// instead of the one-statement claim of a run in an environment without variables.
// --statements: load pg_stat_statements and print the top statements by total time for Stasis.
// Profile the server's CPU with: node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/server-throughput/run.ts
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { startBenchPostgres } from "./statements-postgres.ts";
import { commitCeiling, type CommitCeiling } from "./commit-ceiling.ts";
import { benchGraphileServer, type GraphileResult } from "./graphile.ts";
import { benchStasisServer, type StasisServerResult } from "./stasis.ts";
import { formatPhaseCpu } from "./phase-cpu.ts";

const { values } = parseArgs({
  options: {
    triggers: { type: "string", default: "3000" },
    runs: { type: "string", default: "3000" },
    batch: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "16" },
    runners: { type: "string", default: "4" },
    slots: { type: "string", default: "25" },
    replicas: { type: "string", default: "1" },
    warmup: { type: "string", default: "0" },
    variables: { type: "boolean", default: false },
    statements: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const n = (key: keyof typeof values) => Number(values[key]);
const options = { triggers: n("triggers"), runs: n("runs"), batch: n("batch"), concurrency: n("concurrency"), runners: n("runners"), slots: n("slots"), replicas: n("replicas"), warmup: n("warmup") };
if (!Object.entries(options).every(([k, v]) => Number.isInteger(v) && v >= (k === "warmup" ? 0 : 1))) {
  console.error("usage: run.ts [--triggers N] [--runs N] [--batch N] [--concurrency N] [--runners N] [--slots N] [--replicas N] [--warmup N] [--variables] [--statements] [--json]");
  process.exit(2);
}

const GOAL = 3000;
const dir = await mkdtemp(join(tmpdir(), "stasis-bench-server-"));
await chmod(dir, 0o755); // the embedded PostgreSQL runs as its own user and must reach its data dir
console.error("bench: starting PostgreSQL");
const postgres = await startBenchPostgres(join(dir, "pg"), { statements: Boolean(values.statements) });
let stasis: StasisServerResult;
let graphile: GraphileResult;
let ceiling: CommitCeiling[] = [];
let statements: Array<{ calls: number; total_ms: number; mean_ms: number; query: string }> = [];
try {
  const client = new pg.Client({ connectionString: postgres.url });
  client.on("error", () => {}); // the stop at the end ends it
  await client.connect();
  for (const name of ["stasis_server_bench", "graphile_server_bench"]) await client.query(`CREATE DATABASE ${name}`);
  const url = (name: string) => postgres.url.replace(/\/postgres$/, `/${name}`);
  // The view, made in the admin database, shows every database's statements.
  if (values.statements) await client.query("CREATE EXTENSION pg_stat_statements");
  await client.query("CREATE DATABASE raw_commit_bench");
  console.error("bench: durable commits/s of this disk (raw baseline)");
  ceiling = await commitCeiling(url("raw_commit_bench"), [1, options.concurrency]);
  console.error(`bench: stasis server (${options.triggers} triggers, a batch of ${options.batch}, ${options.runs} claim+complete)`);
  stasis = await benchStasisServer({ databaseUrl: url("stasis_server_bench"), ...options, variables: Boolean(values.variables) });
  if (values.statements) {
    const result = await client.query(
      `SELECT calls::int, round(total_exec_time::numeric, 1)::float AS total_ms, round(mean_exec_time::numeric, 3)::float AS mean_ms, regexp_replace(query, '\\s+', ' ', 'g') AS query
       FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'stasis_server_bench' ORDER BY total_exec_time DESC LIMIT 15`,
    );
    statements = result.rows;
  }
  console.error(`bench: graphile-worker (${options.triggers} addJob, ${options.runs} more by addJobs, all worked)`);
  graphile = await benchGraphileServer({ databaseUrl: url("graphile_server_bench"), triggers: options.triggers, runs: options.runs, concurrency: options.concurrency, warmup: options.warmup });
  await client.end();
} finally {
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}

if (values.json) {
  console.log(JSON.stringify({ options, stasis, graphile, commitCeiling: ceiling, statements }, null, 2));
} else {
  const rate = (v: number) => `${v.toFixed(0)}/s`;
  const rows = [
    ["", `stasis (server alone${options.replicas > 1 ? `, ${options.replicas} replicas` : ""})`, "graphile-worker", "goal", "stasis / goal"],
    ["triggers (one per call)", rate(stasis.triggersPerSecond), rate(graphile.addsPerSecond), `≥ ${GOAL}/s`, (stasis.triggersPerSecond / GOAL).toFixed(2)],
    ["claim + complete", rate(stasis.claimCompletePerSecond), rate(graphile.jobsPerSecond), `≥ ${GOAL}/s`, (stasis.claimCompletePerSecond / GOAL).toFixed(2)],
    ["CPU per trigger (process + postgres)", formatPhaseCpu(stasis.cpu.trigger), formatPhaseCpu(graphile.cpu.add), "", ""],
    ["CPU per run (process + postgres)", formatPhaseCpu(stasis.cpu.run), formatPhaseCpu(graphile.cpu.job), "", ""],
    [
      `batch of ${stasis.batchTrigger.items}`,
      `${stasis.batchTrigger.ms.toFixed(0)} ms (${stasis.batchTrigger.rowsWritten} rows)`,
      `${graphile.addJobsBatchMs.toFixed(0)} ms (addJobs of ${options.runs})`,
      "≤ 500 ms",
      (stasis.batchTrigger.ms / 500).toFixed(2),
    ],
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ")).join("\n"));
  console.log(
    `\n${options.concurrency} trigger calls in flight${options.warmup ? ` after ${options.warmup} unmeasured triggers, claims and completions` : ""}${options.replicas > 1 ? ` on each of ${options.replicas} server replicas (worker threads: one event loop each, one database)` : ""}; ${options.runners} simulated runners × ${options.slots} slots polling with waitMs 0;${values.variables ? " the environment has a variable (every claim the full one);" : ""} attempts per run ${stasis.attemptsPerRun.min}–${stasis.attemptsPerRun.max}; graphile-worker concurrency ${options.concurrency}.`,
  );
  console.log(`raw baseline, same PostgreSQL: ${ceiling.map((c) => `${rate(c.commitsPerSecond)} durable commits with ${c.clients} client${c.clients > 1 ? "s" : ""}`).join(", ")} (one INSERT each, synchronous_commit on).`);
  if (statements.length) {
    console.log("\npg_stat_statements, stasis database, top 15 by total time:");
    for (const s of statements) console.log(`${String(s.calls).padStart(7)} calls ${s.total_ms.toFixed(0).padStart(7)} ms total ${s.mean_ms.toFixed(3).padStart(8)} ms mean  ${s.query.slice(0, 150)}`);
  }
}
