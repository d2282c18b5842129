// npx tsx bench/soak/run.ts --minutes 30 [--rate 1] [--json]
// Steady mixed load (no faults) on the chaos run's stack; samples the server's and each runner's
// RSS and open fds every 10 s, and fails when one grows without bound.
import { join } from "node:path";
import { parseArgs } from "node:util";
import { FINAL } from "../chaos/analyze.ts";
import { startLedger } from "../chaos/ledger-service.ts";
import { createRng } from "../chaos/prng.ts";
import { openFds, processesWith, rssKb } from "../chaos/procfs.ts";
import { startStack } from "../chaos/stack.ts";
import { createWorkload, planRuns } from "../chaos/workload.ts";
import { judgeGrowth, type Growth } from "./trend.ts";

const { values } = parseArgs({ options: { minutes: { type: "string", default: "30" }, rate: { type: "string", default: "1" }, seed: { type: "string", default: "7" }, "sample-seconds": { type: "string", default: "10" }, json: { type: "boolean", default: false } } });
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const seed = Number(values.seed);
const sampleMs = Number(values["sample-seconds"]) * 1000;
const log = (line: string) => process.stderr.write(`${line}\n`);
process.env.STASIS_API_TIMEOUT_MS ??= "10000";

interface Series {
  name: string;
  rssKb: Array<[number, number]>;
  fds: Array<[number, number]>;
}

const ledger = await startLedger();
const stack = await startStack({ servers: 1, runners: 3, capacity: 6, checkpointTmpfsMb: 0, projectDir: join(import.meta.dirname, "../chaos/project"), log });
let exitCode = 1;
try {
  const durationMs = minutes * 60_000;
  const runs = Math.round(rate * minutes * 60);
  const plan = planRuns(createRng(seed), ledger.url, { runs, spreadMs: durationMs, maxWaitMs: 15_000, eventTimeoutSeconds: 120, maxEventDelayMs: 10_000 });
  let stopped = false;
  const workload = createWorkload({ apiUrls: stack.apiUrls, apiKey: stack.apiKey, ledger, rng: createRng(seed + 1), seed, maxEventDelayMs: 10_000, stopped: () => stopped });
  const sender = workload.sendEvents();
  const start = Date.now();
  const series: Series[] = [...stack.servers, ...stack.runners].map((d) => ({ name: d.name, rssKb: [], fds: [] }));
  const taskProcesses: Array<[number, number]> = [];
  const openRuns: Array<[number, number]> = [];
  const daemons = [...stack.servers, ...stack.runners];
  const sample = async () => {
    const t = Date.now() - start;
    for (let i = 0; i < daemons.length; i++) {
      const pid = daemons[i].child?.pid;
      if (!pid) continue;
      const [rss, fds] = await Promise.all([rssKb(pid), openFds(pid)]);
      if (rss !== null) series[i].rssKb.push([t, rss]);
      if (fds !== null) series[i].fds.push([t, fds]);
    }
    taskProcesses.push([t, (await processesWith(stack.stateDir, "/index.mjs")).length]);
    const open = await stack.db.query<{ n: string }>("SELECT count(*) AS n FROM runs WHERE status <> ALL($1)", [FINAL]).then((r) => Number(r.rows[0].n), () => -1);
    openRuns.push([t, open]);
    log(`soak ${(t / 60_000).toFixed(1)} min: ${series.map((s) => `${s.name} ${Math.round((s.rssKb.at(-1)?.[1] ?? 0) / 1024)} MiB/${s.fds.at(-1)?.[1] ?? "?"} fds`).join(", ")}; task processes ${taskProcesses.at(-1)![1]}; runs not final ${open}`);
  };
  log(`soak: ${runs} runs over ${minutes} min (${rate}/s), sampling every ${sampleMs / 1000} s`);
  const sampler = setInterval(() => void sample(), sampleMs);
  await sample();
  await workload.trigger(plan);
  await new Promise((r) => setTimeout(r, Math.max(0, start + durationMs - Date.now())));
  clearInterval(sampler);
  await sample();
  stopped = true;
  await sender;

  const statuses = (await stack.db.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM runs GROUP BY status")).rows;
  const growth: Array<{ name: string; rss: Growth; fds: Growth }> = series.map((s) => ({ name: s.name, rss: judgeGrowth(s.rssKb, 32 * 1024), fds: judgeGrowth(s.fds, 32) }));
  const unbounded = growth.filter((g) => g.rss.unbounded || g.fds.unbounded);
  const report = {
    parameters: { minutes, rate, seed, sampleSeconds: sampleMs / 1000, runners: stack.runners.length, capacity: 6 },
    runs: { triggered: workload.triggered.length, byStatus: Object.fromEntries(statuses.map((s) => [s.status, Number(s.n)])) },
    series,
    taskProcesses,
    openRuns,
    growth,
    ok: unbounded.length === 0,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const mib = (kb: number) => (kb / 1024).toFixed(1);
    const out = [`soak: ${minutes} min at ${rate} run/s (seed ${seed}); runs ${workload.triggered.length}: ${statuses.map((s) => `${s.status} ${s.n}`).join(", ")}`];
    for (const s of series) {
      const g = growth.find((x) => x.name === s.name)!;
      out.push(`${s.name}: RSS MiB ${s.rssKb.map(([, v]) => mib(v)).join(" ")}`);
      out.push(`${" ".repeat(s.name.length)}  fds     ${s.fds.map(([, v]) => v).join(" ")}`);
      out.push(`${" ".repeat(s.name.length)}  last half: RSS ${mib(g.rss.mean)} MiB, ${g.rss.perHour >= 0 ? "+" : ""}${mib(g.rss.perHour)} MiB/h${g.rss.unbounded ? " UNBOUNDED" : ""}; fds ${g.fds.mean.toFixed(0)}, ${g.fds.perHour >= 0 ? "+" : ""}${g.fds.perHour.toFixed(1)}/h${g.fds.unbounded ? " UNBOUNDED" : ""}`);
    }
    out.push(`task processes alive: ${taskProcesses.map(([, v]) => v).join(" ")}`);
    out.push(`runs not final:       ${openRuns.map(([, v]) => v).join(" ")}`);
    out.push(report.ok ? "no unbounded growth" : `UNBOUNDED GROWTH: ${unbounded.map((g) => g.name).join(", ")}`);
    process.stdout.write(`${out.join("\n")}\n`);
  }
  exitCode = report.ok ? 0 : 1;
} finally {
  await stack.cleanup();
  await ledger.close();
}
process.exit(exitCode);
