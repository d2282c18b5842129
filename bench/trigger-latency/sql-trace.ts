// Every PostgreSQL statement (and pool wait) between one trigger call and the runner's claim, with times,
// for a few sequential runs on one in-process runner: where trigger → claimed → runner goes, statement by statement.
// Usage: npx tsx bench/trigger-latency/sql-trace.ts [--runs 5] [--warm]
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import { monitorEventLoopDelay } from "node:perf_hooks";
import pino from "pino";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { startLocalStack } from "../../cli/local-stack.ts";
import { startEmbeddedPostgres } from "../../server/index.ts";
import { handedLog } from "./handed-log.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, warm: { type: "boolean", default: false } } });
const now = () => performance.timeOrigin + performance.now();
const events: Array<{ t: number; what: string }> = [];
const { sink, handed } = handedLog();

const dir = await mkdtemp(join(tmpdir(), "stasis-bench-sqltrace-"));
await chmod(dir, 0o755);
const postgres = await startEmbeddedPostgres({ dataDir: join(dir, "pg") });
try {
  const stack = await startLocalStack({ stateDir: join(dir, "stasis"), databaseUrl: postgres.url, runners: 1, capacity: 10, checkpoints: false, warmProcesses: values.warm ? undefined : 0, log: pino({ level: "debug" }, sink) });
  try {
    const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(stack.apiUrl, stack.adminToken, "POST", "/api/v1/admin/projects", { slug: "bench" });
    const apiKey = created.environments.find((e) => e.environment === "production")!.apiKey;
    await deployProject({ projectDir: join(import.meta.dirname, "project"), apiUrl: stack.apiUrl, apiKey, store: createLayoutImageStore(stack.dirs.images), promote: true, withRuntime: false });
    const starts = new Map<string, number>();
    stack.db.on("query", (q: { __knexQueryUid: string; sql: string }) => {
      starts.set(q.__knexQueryUid, now());
    });
    stack.db.on("query-response", (_r: unknown, q: { __knexQueryUid: string; sql: string }) => {
      const s = starts.get(q.__knexQueryUid);
      events.push({ t: now(), what: `sql ${(now() - (s ?? now())).toFixed(1).padStart(5)} ms  ${q.sql.replace(/\s+/g, " ").slice(0, 90)}` });
    });
    const one = async (trace: boolean) => {
      events.length = 0;
      const t0 = now();
      const { runs: [run] } = await callStasisApi<{ runs: Array<{ id: string }> }>(stack.apiUrl, apiKey, "POST", "/api/v1/tasks/batch", { items: [{ task: "noop", payload: null }] });
      const tResp = now();
      for (;;) {
        if (handed.has(run.id)) break;
        await delay(2);
      }
      await delay(50);
      if (!trace) return;
      const h = handed.get(run.id)!;
      const all = [...events, { t: tResp, what: "trigger answered" }, ...Object.entries(h).map(([k, v]) => ({ t: v, what: `runner: ${k}` }))].sort((a, b) => a.t - b.t);
      console.log(`--- run ${run.id}`);
      for (const e of all) if (e.t - t0 < 400) console.log(`${(e.t - t0).toFixed(1).padStart(7)}  ${e.what}`);
    };
    for (let i = 0; i < 3; i++) await one(false);
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lag.enable();
    for (let i = 0; i < Number(values.runs); i++) { await one(true); await delay(300); }
    lag.disable();
    console.log(`event loop delay over the traced runs: p50 ${(lag.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, max ${(lag.max / 1e6).toFixed(1)} ms`);
  } finally {
    await stack.stop();
  }
} finally {
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
