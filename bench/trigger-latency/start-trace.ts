// Where trigger → task code goes, step by step, for sequential runs on one in-process runner:
// trigger call → claimed (runs.started_at, the claim's transaction) → the runner has the claim →
// a process in hand (spare taken or started) → its `ready` read → `execute` sent → task code starts.
// The runner's steps come from its debug line "run handed to its process"; the rest from the run.
// Usage: npx tsx bench/trigger-latency/start-trace.ts [--runs 30] [--warm [--spares n|slots]] [--capacity 10]
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import pino from "pino";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { startLocalStack } from "../../cli/local-stack.ts";
import { startEmbeddedPostgres } from "../../server/index.ts";
import { percentile } from "./stats.ts";
import { handedLog } from "./handed-log.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "30" }, capacity: { type: "string", default: "10" }, warm: { type: "boolean", default: false }, spares: { type: "string" }, gap: { type: "string", default: "0" } } });
const runs = Number(values.runs);
const gapMs = Number(values.gap);
/** `--spares`: the most spares per deployment (a number or `slots`); the runner's default without it. */
const spares = values.spares === undefined || values.spares === "slots" ? (values.spares as "slots" | undefined) : Number(values.spares);

export interface StartTrace {
  claimed: number;
  claimReceived: number;
  processInHand: number;
  ready: number;
  executeSent: number;
  taskStarted: number;
  /** How long before the run the task's module was imported (a spare: long before; a fresh process: during the start). */
  importedBefore: number;
}

const { sink, handed } = handedLog();

const dir = await mkdtemp(join(tmpdir(), "stasis-bench-trace-"));
await chmod(dir, 0o755);
const postgres = await startEmbeddedPostgres({ dataDir: join(dir, "pg") });
try {
  const stack = await startLocalStack({ stateDir: join(dir, "stasis"), databaseUrl: postgres.url, runners: 1, capacity: Number(values.capacity), checkpoints: false, warmProcesses: values.warm ? spares : 0, log: pino({ level: "debug" }, sink) });
  try {
    const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(stack.apiUrl, stack.adminToken, "POST", "/api/v1/admin/projects", { slug: "bench" });
    const apiKey = created.environments.find((e) => e.environment === "production")!.apiKey;
    await deployProject({ projectDir: join(import.meta.dirname, "project"), apiUrl: stack.apiUrl, apiKey, store: createLayoutImageStore(stack.dirs.images), promote: true, withRuntime: false });
    const one = async () => {
      const t0 = Date.now();
      const { runs: [run] } = await callStasisApi<{ runs: Array<{ id: string }> }>(stack.apiUrl, apiKey, "POST", "/api/v1/tasks/batch", { items: [{ task: "noop", payload: null }] });
      for (;;) {
        const row = await stack.db("runs").where({ id: run.id }).first("status", "output", "started_at");
        if (row.status === "COMPLETED" && handed.has(run.id)) {
          const h = handed.get(run.id)!;
          const out = row.output as { startedAt: number; importedAt: number };
          return { claimed: row.started_at.getTime() - t0, claimReceived: h.claimReceived - t0, processInHand: h.processInHand - t0, ready: h.ready - t0, executeSent: h.executeSent - t0, taskStarted: out.startedAt - t0, importedBefore: out.startedAt - out.importedAt } satisfies StartTrace;
        }
        if (row.status !== "COMPLETED" && row.status !== "EXECUTING" && row.status !== "QUEUED") throw new Error(`run ended ${row.status}`);
        await delay(2);
      }
    };
    for (let i = 0; i < 3; i++) await one();
    const traces: StartTrace[] = [];
    for (let i = 0; i < runs; i++) {
      // The gap before each run, the first too: the warm-up's last run must not be the measured run's neighbour.
      if (gapMs) await delay(gapMs);
      traces.push(await one());
    }
    const steps: Array<[string, (t: StartTrace) => number]> = [
      ["trigger → claimed", (t) => t.claimed],
      ["claimed → runner has the claim", (t) => t.claimReceived - t.claimed],
      ["runner has it → process in hand", (t) => t.processInHand - t.claimReceived],
      ["process in hand → ready read", (t) => t.ready - t.processInHand],
      ["ready → execute sent", (t) => t.executeSent - t.ready],
      ["execute sent → task code starts", (t) => t.taskStarted - t.executeSent],
      ["trigger → task code starts", (t) => t.taskStarted],
      ["module imported before code starts", (t) => t.importedBefore],
    ];
    console.log(`${values.warm ? "warm spares" : "fresh process"}, ${runs} sequential runs${gapMs ? `, ${gapMs} ms apart` : ""}:`);
    for (const [name, f] of steps) {
      const v = traces.map(f);
      console.log(`${name.padEnd(38)} p50 ${String(percentile(v, 50)).padStart(5)} ms   p99 ${String(percentile(v, 99)).padStart(5)} ms`);
    }
  } finally {
    await stack.stop();
  }
} finally {
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}
