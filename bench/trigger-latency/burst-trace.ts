// Where a reused burst's time goes (the "stasis (reused)" row of run.ts): one in-process runner,
// a task with processKeepAlive, a burst of no-op runs. Prints, for each two runs in a row in one
// kept process, code start → completed (the server's completed_at) → the next run claimed (its
// started_at) → its code start; the CPU each run cost, per program on the machine; and the
// statements each run cost (knex's query events, plus pg_stat_statements with --statements).
// Usage: npx tsx bench/trigger-latency/burst-trace.ts [--burst 500] [--capacity 10] [--statements] [--profile out.cpuprofile] [--runner-process]
// (--runner-process: the runner as its own `stasis runner` process, as deployed, instead of in this one)
// (--profile: a CPU profile of this process — server, runner and bench — over the burst only)
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { startLocalStack } from "../../cli/local-stack.ts";
import { startBenchPostgres } from "../server-throughput/statements-postgres.ts";
import { cpuSpent, processCpu, sampleCpu } from "./cpu-sample.ts";
import { percentile } from "./stats.ts";

const { values } = parseArgs({ options: { burst: { type: "string", default: "500" }, capacity: { type: "string", default: "10" }, profile: { type: "string" }, statements: { type: "boolean", default: false }, "runner-process": { type: "boolean", default: false } } });
const burst = Number(values.burst);
const capacity = Number(values.capacity);

interface BurstRow {
  output: { startedAt: number; processId: string };
  started_at: Date;
  completed_at: Date;
}

const dir = await mkdtemp(join(tmpdir(), "stasis-bench-burst-"));
await chmod(dir, 0o755); // the embedded PostgreSQL runs as its own user and must reach its data dir
const postgres = await startBenchPostgres(join(dir, "pg"), { statements: values.statements });
try {
  const separate = values["runner-process"];
  const stack = await startLocalStack({ stateDir: join(dir, "stasis"), databaseUrl: postgres.url, runners: separate ? 0 : 1, capacity, checkpoints: false, warmProcesses: 0 });
  // Its task processes unsandboxed, as the in-process runner's: the sandbox costs a kept process only at its start.
  const runnerProcess = separate
    ? spawn(process.execPath, [join(import.meta.dirname, "../../cli/bin.mjs"), "runner", "--server-url", stack.apiUrl, "--name", "bench", "--capacity", String(capacity), "--work-dir", join(dir, "runner"), "--image-cache", stack.dirs.imageCache, "--no-checkpoints", "--warm-processes", "0"], {
        env: { ...process.env, STASIS_RUNNER_TOKEN: stack.runnerToken, STASIS_LOG_LEVEL: "warn", STASIS_TASK_SANDBOX: "off" },
        stdio: ["ignore", "ignore", "inherit"],
      })
    : null;
  const runnerCpuMs = () => (runnerProcess?.pid === undefined ? 0 : processCpu(runnerProcess.pid).ms);
  try {
    const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(stack.apiUrl, stack.adminToken, "POST", "/api/v1/admin/projects", { slug: "bench" });
    const apiKey = created.environments.find((e) => e.environment === "production")!.apiKey;
    await deployProject({ projectDir: join(import.meta.dirname, "project"), apiUrl: stack.apiUrl, apiKey, store: createLayoutImageStore(stack.dirs.images), promote: true, withRuntime: false });
    const trigger = (count: number) =>
      callStasisApi<{ runs: Array<{ id: string }> }>(stack.apiUrl, apiKey, "POST", "/api/v1/tasks/batch", { items: Array.from({ length: count }, () => ({ task: "noop-kept", payload: null })) }).then((r) => r.runs.map((run) => run.id));
    const finished = async (ids: string[]): Promise<BurstRow[]> => {
      for (;;) {
        const [{ count }] = await stack.db("runs").whereIn("id", ids).where("status", "COMPLETED").count<Array<{ count: string }>>("* as count");
        if (Number(count) === ids.length) return (await stack.db("runs").whereIn("id", ids).select("output", "started_at", "completed_at")) as BurstRow[];
        // Every 50 ms: the figures come from the rows' own times, and a tighter watch took CPU from the runs it watched.
        await delay(50);
      }
    };
    // Warm-up: the image unpacked, a kept process per slot.
    await finished(await trigger(capacity * 2));

    const statements = new Map<string, number>();
    const countStatement = (q: { sql: string }) => {
      const text = q.sql.replace(/\s+/g, " ").replace(/\(\$\d+(, \$\d+)*\)/g, "(…)").slice(0, 100);
      statements.set(text, (statements.get(text) ?? 0) + 1);
    };
    if (values.statements) {
      await stack.db.raw("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
      await stack.db.raw("SELECT pg_stat_statements_reset()");
    }
    const profiler = values.profile ? new Session() : null;
    if (profiler) {
      profiler.connect();
      await profiler.post("Profiler.enable");
      await profiler.post("Profiler.start");
    }
    stack.db.on("query", countStatement);
    const t0 = Date.now();
    const [ownCpu0, elu0, cpu0, runnerCpu0, writes0] = [process.cpuUsage(), performance.eventLoopUtilization(), sampleCpu(), runnerCpuMs(), await writesSoFar(stack.db)];
    const rows = await finished(await trigger(burst));
    const wall = Math.max(...rows.map((r) => r.completed_at.getTime())) - t0;
    const [ownCpu, elu, cpu, runnerCpu, writes] = [process.cpuUsage(ownCpu0), performance.eventLoopUtilization(elu0), cpuSpent(cpu0, sampleCpu()), runnerCpuMs() - runnerCpu0, await writesSoFar(stack.db)];
    stack.db.off("query", countStatement);
    if (profiler) {
      const { profile } = await profiler.post("Profiler.stop");
      await writeFile(values.profile!, JSON.stringify(profile));
      profiler.disconnect();
    }

    const perRun = (ms: number) => `${(ms / burst).toFixed(2)} ms`;
    const steps = stepsPerProcess(rows);
    console.log(`burst of ${burst} (capacity ${capacity}): ${((burst / wall) * 1000).toFixed(1)} runs/s, ${steps.processes} kept processes`);
    const own = `this process (${separate ? "server, bench" : "server, runner, bench"}) ${perRun((ownCpu.user + ownCpu.system) / 1000)}, its event loop ${(elu.utilization * 100).toFixed(0)} % busy`;
    console.log(`CPU per run: the whole machine ${perRun(cpu.machineMs)}; ${own}${separate ? `; the runner process ${perRun(runnerCpu)}` : ""}`);
    console.log(`CPU per run by program: ${cpu.programs.map(([name, ms]) => `${name} ${perRun(ms)}`).join(", ")}`);
    const writesPerRun = (key: keyof typeof writes) => ((writes[key] - writes0[key]) / burst).toFixed(2);
    console.log(`per run: ${writesPerRun("commits")} commits, ${writesPerRun("walSyncs")} WAL fsyncs (PostgreSQL); ${writesPerRun("diskWrites")} writes completed by the machine's disks`);
    for (const [name, list] of Object.entries(steps.steps)) {
      console.log(`${name.padEnd(26)} p50 ${String(percentile(list, 50)).padStart(4)} ms   p90 ${String(percentile(list, 90)).padStart(4)} ms   p99 ${String(percentile(list, 99)).padStart(4)} ms`);
    }
    const total = [...statements.values()].reduce((a, b) => a + b, 0);
    console.log(`\nstatements per run (this process, knex): ${(total / burst).toFixed(2)}`);
    for (const [text, n] of [...statements].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${(n / burst).toFixed(2).padStart(6)}  ${text}`);
    if (values.statements) {
      const { rows: top } = await stack.db.raw(
        `SELECT calls::int, round(total_exec_time::numeric, 1)::float AS total_ms, round(mean_exec_time::numeric, 3)::float AS mean_ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS query
         FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12`,
      );
      console.log("\npg_stat_statements, top 12 by total time:");
      for (const r of top) console.log(`${String(r.calls).padStart(6)} calls ${String(r.total_ms).padStart(8)} ms total ${String(r.mean_ms).padStart(7)} ms mean  ${r.query}`);
    }
  } finally {
    if (runnerProcess) {
      const exited = new Promise((resolve) => runnerProcess.once("exit", resolve));
      runnerProcess.kill("SIGTERM");
      await exited;
    }
    await stack.stop();
  }
} finally {
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}

/** The steps between runs in a row in one kept process (the task names its process in its output). */
function stepsPerProcess(rows: BurstRow[]) {
  const byProcess = new Map<string, BurstRow[]>();
  for (const r of rows) byProcess.set(r.output.processId, [...(byProcess.get(r.output.processId) ?? []), r]);
  const steps: Record<string, number[]> = { "claimed → code": [], "code → completed": [], "completed → next claimed": [], "code → next code": [] };
  for (const list of byProcess.values()) {
    list.sort((a, b) => a.output.startedAt - b.output.startedAt);
    list.forEach((r, i) => {
      steps["claimed → code"].push(r.output.startedAt - r.started_at.getTime());
      steps["code → completed"].push(r.completed_at.getTime() - r.output.startedAt);
      const next = list[i + 1];
      if (!next) return;
      steps["completed → next claimed"].push(next.started_at.getTime() - r.completed_at.getTime());
      steps["code → next code"].push(next.output.startedAt - r.output.startedAt);
    });
  }
  return { processes: byProcess.size, steps };
}

/** Counters of what reaches the disk: the database's commits, PostgreSQL's WAL fsyncs, and the disks' completed writes (/proc/diskstats). */
async function writesSoFar(db: import("knex").Knex): Promise<{ commits: number; walSyncs: number; diskWrites: number }> {
  await db.raw("SELECT pg_stat_clear_snapshot()");
  const { rows: [row] } = await db.raw(`SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::float AS commits, (SELECT COALESCE(SUM(fsyncs), 0) FROM pg_stat_io WHERE object = 'wal')::float AS wal_syncs`);
  const diskWrites = (await readFile("/proc/diskstats", "utf8"))
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length > 7 && /^(vd[a-z]+|xvd[a-z]+|sd[a-z]+|nvme\d+n\d+)$/.test(f[2]))
    .reduce((sum, f) => sum + Number(f[7]), 0);
  return { commits: row.commits, walSyncs: row.wal_syncs, diskWrites };
}
