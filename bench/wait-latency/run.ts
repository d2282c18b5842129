// How late `wait.for` ends, with checkpoints (the run is frozen and restored) and without (the
// process stays alive), and where the time goes: the server noticing the due waitpoint, a runner
// claiming the resume, fetching the checkpoint, restoring it, and the task's code continuing.
// Usage: npx tsx bench/wait-latency/run.ts [--runs 12] [--min-ms 6000] [--max-ms 12000] [--runners 2] [--capacity 4] [--mb 20] [--mode both|on|off] [--json]
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import pino from "pino";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { startLocalStack } from "../../cli/local-stack.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "12" },
    "min-ms": { type: "string", default: "6000" },
    "max-ms": { type: "string", default: "12000" },
    runners: { type: "string", default: "2" },
    capacity: { type: "string", default: "4" },
    mb: { type: "string", default: "20" },
    mode: { type: "string", default: "both" },
    json: { type: "boolean", default: false },
  },
});
const opts = { runs: Number(values.runs), minMs: Number(values["min-ms"]), maxMs: Number(values["max-ms"]), runners: Number(values.runners), capacity: Number(values.capacity), mb: Number(values.mb) };
const modes = values.mode === "both" ? [true, false] : [values.mode === "on"];

interface LogRecord {
  time: number;
  msg: string;
  runId?: string;
  [key: string]: unknown;
}

interface Stats {
  p50: number;
  p95: number;
  max: number;
}

function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
  return { p50: at(0.5), p95: at(0.95), max: sorted.at(-1) ?? NaN };
}

async function measure(checkpoints: boolean) {
  const stateDir = await mkdtemp(join(tmpdir(), "stasis-bench-wait-"));
  await chmod(stateDir, 0o755); // the embedded PostgreSQL runs as its own user
  const records: LogRecord[] = [];
  const log = pino({ level: "info" }, { write: (line: string) => void records.push(JSON.parse(line)) });
  const stack = await startLocalStack({ stateDir, runners: opts.runners, capacity: opts.capacity, checkpoints, suspendThresholdMs: 1000, log });
  try {
    const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(stack.apiUrl, stack.adminToken, "POST", "/api/v1/admin/projects", { slug: "waitbench" });
    const apiKey = created.environments.find((e) => e.environment === "production")!.apiKey;
    await deployProject({ projectDir: join(import.meta.dirname, "project"), apiUrl: stack.apiUrl, apiKey, store: createLayoutImageStore(stack.dirs.images), promote: true, withRuntime: false });
    // Waits spread evenly over [min, max], all triggered at once: runs freeze and wake while others do.
    const waits = Array.from({ length: opts.runs }, (_, i) => Math.round(opts.minMs + ((opts.maxMs - opts.minMs) * i) / Math.max(1, opts.runs - 1)));
    const { runs } = await callStasisApi<{ runs: Array<{ id: string }> }>(stack.apiUrl, apiKey, "POST", "/api/v1/tasks/batch", { items: waits.map((ms) => ({ task: "sleeper", payload: { ms, mb: opts.mb } })) });
    const ids = runs.map((r) => r.id);
    const deadline = Date.now() + opts.maxMs + 120_000;
    let rows: Array<{ id: string; status: string; output: { before: number; after: number } | null; error: unknown }> = [];
    for (;;) {
      rows = await stack.db("runs").whereIn("id", ids).select("id", "status", "output", "error");
      if (rows.every((r) => ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT"].includes(r.status))) break;
      if (Date.now() > deadline) throw new Error("bench runs did not finish in time");
      await delay(100);
    }
    const failed = rows.find((r) => r.status !== "COMPLETED");
    if (failed) throw new Error(`a bench run ended ${failed.status}: ${JSON.stringify(failed.error)}`);
    const wps = await stack.db("waitpoints").whereIn("run_id", ids).where({ kind: "duration" }).select("run_id", "due_at", "completed_at", "created_at");
    const perRun = ids.map((id, i) => {
      const out = rows.find((r) => r.id === id)!.output!;
      const wp = wps.find((w) => w.run_id === id)!;
      const suspended = records.find((r) => r.runId === id && r.msg === "run suspended");
      const restored = records.find((r) => r.runId === id && r.msg === "run restored");
      const due = out.before + waits[i];
      const wpCompleted = (wp.completed_at as Date).getTime();
      const restoreEnd = restored?.time;
      const restoreMs = Number(restored?.restoreMs ?? 0);
      const fetchMs = Number(restored?.fetchMs ?? 0);
      return {
        waitMs: waits[i],
        lateMs: out.after - due,
        // The task's call → the server created its waitpoint (due `ms` after that).
        callMs: (wp.created_at as Date).getTime() - out.before,
        // The scheduler completing the waitpoint after its due time (server clock).
        serverNoticeMs: wpCompleted - (wp.due_at as Date).getTime(),
        suspendMs: suspended ? Number(suspended.suspendMs) : null,
        // Waitpoint completed → a runner began fetching/restoring the checkpoint (claim, slot, poll).
        claimMs: restoreEnd ? restoreEnd - restoreMs - fetchMs - wpCompleted : null,
        fetchMs: restored ? fetchMs : null,
        localCopy: restored ? Boolean(restored.localCopy) : null,
        restoreMs: restored ? restoreMs : null,
        // Restored (or told, when alive) → the code after the wait ran.
        continueMs: restoreEnd ? out.after - restoreEnd : out.after - wpCompleted,
      };
    });
    const stasisLines = (await stack.db("run_logs").whereIn("run_id", ids).where("message", "like", "[stasis]%").select("message")) as Array<{ message: string }>;
    const pick = (key: keyof (typeof perRun)[number]) => stats(perRun.map((r) => r[key]).filter((v): v is number => typeof v === "number"));
    return {
      checkpoints,
      runs: perRun.length,
      frozen: perRun.filter((r) => r.restoreMs !== null).length,
      localCopies: perRun.filter((r) => r.localCopy).length,
      lateMs: pick("lateMs"),
      callMs: pick("callMs"),
      serverNoticeMs: pick("serverNoticeMs"),
      suspendMs: pick("suspendMs"),
      claimMs: pick("claimMs"),
      fetchMs: pick("fetchMs"),
      restoreMs: pick("restoreMs"),
      continueMs: pick("continueMs"),
      // Why runs were not frozen, or anything else the runners warned about, by message.
      warnings: Object.entries(
        [...records.filter((r) => Number(r.level) >= 40).map((r) => r.msg), ...stasisLines.map((l) => l.message.slice(0, 160))].reduce<Record<string, number>>((acc, msg) => ({ ...acc, [msg]: (acc[msg] ?? 0) + 1 }), {}),
      ),
      perRun,
    };
  } finally {
    await stack.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

const results = [];
for (const checkpoints of modes) {
  console.error(`bench: ${opts.runs} runs waiting ${opts.minMs}–${opts.maxMs} ms, checkpoints ${checkpoints ? "on" : "off"}`);
  results.push(await measure(checkpoints));
}
if (values.json) {
  console.log(JSON.stringify({ options: opts, results }, null, 2));
} else {
  const keys = ["lateMs", "callMs", "serverNoticeMs", "suspendMs", "claimMs", "fetchMs", "restoreMs", "continueMs"] as const;
  for (const r of results) {
    console.log(`checkpoints ${r.checkpoints ? "on" : "off"}: ${r.runs} runs, ${r.frozen} frozen (${r.localCopies} restored from the local copy)`);
    for (const [msg, count] of r.warnings) console.log(`  warning ×${count}: ${msg}`);
    for (const key of keys) {
      const s = r[key];
      if (!Number.isNaN(s.p50)) console.log(`  ${key.padEnd(15)} p50 ${String(s.p50).padStart(6)}  p95 ${String(s.p95).padStart(6)}  max ${String(s.max).padStart(6)}`);
    }
  }
}
process.exit(0);
