// What one run's claim costs on an idle server, split: the server's own call (knex, named prepared
// statement), the same statement on a plain pg client, that statement with its commit made
// asynchronous (session synchronous_commit = off: no wait for the WAL flush), its durable COMMIT
// alone, PostgreSQL's execution of it (EXPLAIN ANALYZE), and the machine's floor (pg-baseline.ts).
// Runs are queued with no runner, then claimed one at a time for a registered runner, 50 ms apart.
// Usage: npx tsx bench/trigger-latency/claim-cost.ts [--samples 40]
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import pg from "pg";
import pino from "pino";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { startLocalStack } from "../../cli/local-stack.ts";
import { startEmbeddedPostgres } from "../../server/index.ts";
import { claimFreshRuns } from "../../server/sql/claim-fresh-runs.ts";
import { formatPgBaseline, measurePgBaseline } from "./pg-baseline.ts";
import { summarize } from "./stats.ts";

const { values } = parseArgs({ options: { samples: { type: "string", default: "40" } } });
const samples = Number(values.samples);
const RUNNER = "runner_claim_cost";
const CLAIM = "SELECT locked, moved FROM stasis_claim_fresh_runs($1, $2, true, $3::text[], 60000)";

const dir = await mkdtemp(join(tmpdir(), "stasis-bench-claimcost-"));
await chmod(dir, 0o755);
const postgres = await startEmbeddedPostgres({ dataDir: join(dir, "pg") });
try {
  const stack = await startLocalStack({ stateDir: join(dir, "stasis"), databaseUrl: postgres.url, runners: 0, checkpoints: false, log: pino({ level: "warn" }) });
  const client = new pg.Client({ connectionString: postgres.url });
  try {
    const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(stack.apiUrl, stack.adminToken, "POST", "/api/v1/admin/projects", { slug: "bench" });
    const apiKey = created.environments.find((e) => e.environment === "production")!.apiKey;
    await deployProject({ projectDir: join(import.meta.dirname, "project"), apiUrl: stack.apiUrl, apiKey, store: createLayoutImageStore(stack.dirs.images), promote: true, withRuntime: false });
    await stack.db("runners").insert({ id: RUNNER, name: RUNNER, capacity: 10, checkpoints: false, workload: "process" });
    // Four timed loops of `samples` claims, and one for EXPLAIN ANALYZE.
    for (let i = 0; i < samples * 4 + 1; i++) await callStasisApi(stack.apiUrl, apiKey, "POST", "/api/v1/tasks/noop/trigger", { payload: null });
    await client.connect();

    let leases = 0;
    const lease = () => [`lease_claimcost_${++leases}`];
    const timeClaims = async (claimOne: () => Promise<number>) => {
      const times: number[] = [];
      for (let i = 0; i < samples; i++) {
        const t = performance.now();
        const moved = await claimOne();
        times.push(performance.now() - t);
        if (moved !== 1) throw new Error(`a claim moved ${moved} runs, not 1`);
        await delay(50);
      }
      return summarize(times);
    };
    const rawClaim = async () => ((await client.query({ name: "claim", text: CLAIM, values: [RUNNER, 1, lease()] })).rows[0].moved as unknown[]).length;

    const server = await timeClaims(async () => (await claimFreshRuns(stack.db, { runnerId: RUNNER, limit: 1, leaseMs: 60_000, leaseIds: lease(), keyring: false })).moved.length);
    const raw = await timeClaims(rawClaim);
    await client.query("SET synchronous_commit = off");
    const asyncCommit = await timeClaims(rawClaim);
    await client.query("SET synchronous_commit = on");
    const commits: number[] = [];
    await timeClaims(async () => {
      await client.query("BEGIN");
      const moved = await rawClaim();
      const t = performance.now();
      await client.query("COMMIT");
      commits.push(performance.now() - t);
      return moved;
    });
    const explain = await client.query(`EXPLAIN (ANALYZE, WAL, FORMAT JSON) ${CLAIM}`, [RUNNER, 1, lease()]);
    const plan = (explain.rows[0]["QUERY PLAN"] as Array<{ "Execution Time": number; Plan: { "WAL Records": number; "WAL Bytes": number } }>)[0];
    const baseline = await measurePgBaseline(postgres.url);

    const f = (s: { p50: number; p99: number }) => `p50 ${s.p50.toFixed(2)} ms   p99 ${s.p99.toFixed(2)} ms`;
    console.log(`claim of one queued run, ${samples} claims each, 50 ms apart, nothing else running on the server:`);
    console.log(`  the server's call (claimFreshRuns)        ${f(server)}`);
    console.log(`  the statement, plain pg client             ${f(raw)}`);
    console.log(`  the same, synchronous_commit = off         ${f(asyncCommit)}`);
    console.log(`  its COMMIT alone (BEGIN; claim; COMMIT)    ${f(summarize(commits))}`);
    console.log(`  PostgreSQL's execution (EXPLAIN ANALYZE)   ${plan["Execution Time"].toFixed(2)} ms, ${plan.Plan["WAL Records"]} WAL records, ${plan.Plan["WAL Bytes"]} bytes`);
    console.log(formatPgBaseline(baseline));
  } finally {
    await client.end().catch(() => {});
    await stack.stop();
  }
} finally {
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
