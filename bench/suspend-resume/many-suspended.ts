// 1,000 runs suspended on one host: the whole platform in this process (server + one runner with the
// process runtime and the dir checkpoint store, embedded PostgreSQL beside it) suspends `--count` runs
// of a task with no state of its own, `--batch` at a time, and prints after each batch how long the
// batch took, how many task processes are alive (the goal: none), the checkpoint bytes on disk per
// run, and this process's memory (server + runner: should stay flat). A few resumes after the first
// batch and after the last show whether a resume slows down with many runs suspended.
// Usage: npx tsx bench/suspend-resume/many-suspended.ts [--count 1000] [--batch 100] [--capacity 10] [--resumes 3] [--json]
import { chmod, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as delay } from "node:timers/promises";
import pino from "pino";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { startLocalStack } from "../../cli/local-stack.ts";
import type { RunView } from "../../schemas/index.ts";
import { dirSize, pollFor } from "./util.ts";

const { values } = parseArgs({ options: { count: { type: "string", default: "1000" }, batch: { type: "string", default: "100" }, capacity: { type: "string", default: "10" }, resumes: { type: "string", default: "3" }, json: { type: "boolean", default: false } } });
const [count, batch, capacity, resumes] = [Number(values.count), Number(values.batch), Number(values.capacity), Number(values.resumes)];
if (![count, batch, capacity].every((n) => Number.isInteger(n) && n >= 1) || batch > 500 || !(resumes >= 0)) {
  console.error("usage: many-suspended.ts [--count N] [--batch 1..500] [--capacity N] [--resumes N] [--json]");
  process.exit(2);
}

interface BatchRow {
  suspended: number;
  batchSeconds: number;
  runsPerSecond: number;
  taskProcesses: number;
  checkpointBytes: number;
  rssBytes: number;
  heapUsedBytes: number;
}

const dir = await mkdtemp(path.join(tmpdir(), "stasis-bench-many-"));
await chmod(dir, 0o755); // the embedded PostgreSQL runs as its own user and must reach its data dir
const stack = await startLocalStack({ stateDir: path.join(dir, "platform"), runners: 1, capacity, warmProcesses: 0, log: pino({ level: "warn" }) });
const rows: BatchRow[] = [];
const resumeMs: { early: number[]; late: number[] } = { early: [], late: [] };
try {
  if (!stack.checkpointsMode.available) throw new Error(`checkpoints unavailable: ${stack.checkpointsMode.reason}`);
  const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(stack.apiUrl, stack.adminToken, "POST", "/api/v1/admin/projects", { slug: "bench" });
  const apiKey = created.environments.find((e) => e.environment === "development")!.apiKey;
  const api = <T>(method: string, route: string, body?: unknown) => callStasisApi<T>(stack.apiUrl, apiKey, method, route, body);
  await deployProject({ projectDir: path.join(import.meta.dirname, "project"), apiUrl: stack.apiUrl, apiKey, store: createLayoutImageStore(stack.dirs.images), promote: true, withRuntime: false });

  const suspendedCount = async () => Number((await stack.db("runs").where({ status: "SUSPENDED" }).count<Array<{ count: string }>>("* as count"))[0]!.count);
  const ids: string[] = [];
  const suspendSome = async (n: number) => {
    const { runs } = await api<{ runs: Array<{ id: string }> }>("POST", "/api/v1/tasks/batch", { items: Array.from({ length: n }, () => ({ task: "hold-state", payload: { mb: 0 } })) });
    ids.push(...runs.map((r) => r.id));
    await pollFor(async () => {
      const bad = await stack.db("runs").whereIn("id", runs.map((r) => r.id)).whereNotIn("status", ["QUEUED", "EXECUTING", "WAITING", "SUSPENDED"]).first("id", "status");
      if (bad) throw new Error(`run ${bad.id} is ${bad.status} instead of suspending`);
      return (await suspendedCount()) >= ids.length || undefined;
    }, 3_600_000, `${ids.length} runs suspended`);
  };
  /** Event sent → code after the wait, on the restored process, for one suspended run (it completes). */
  const resumeOne = async (id: string) => {
    const sent = Date.now();
    await api("POST", "/api/v1/events", { event: "bench.go", payload: { runId: id } });
    const done = await pollFor(async () => {
      const view = await api<RunView>("GET", `/api/v1/runs/${id}`);
      return ["COMPLETED", "FAILED", "CANCELED", "CRASHED"].includes(view.status) ? view : undefined;
    }, 300_000, `run ${id} to finish`);
    if (done.status !== "COMPLETED") throw new Error(`run ${id} ended ${done.status}`);
    ids.splice(ids.indexOf(id), 1);
    return (done.output as { resumed: number }).resumed - sent;
  };

  while (ids.length < count) {
    const n = Math.min(batch, count - ids.length);
    const t0 = Date.now();
    console.error(`bench: suspending runs ${ids.length + 1}–${ids.length + n}`);
    await suspendSome(n);
    const seconds = (Date.now() - t0) / 1000;
    // Let the checkpoints still being written land before measuring the disk.
    await delay(500);
    const memory = process.memoryUsage();
    rows.push({ suspended: ids.length, batchSeconds: seconds, runsPerSecond: n / seconds, taskProcesses: await countTaskProcesses(stack.dirs.imageCache), checkpointBytes: await dirSize(stack.dirs.checkpoints), rssBytes: memory.rss, heapUsedBytes: memory.heapUsed });
    console.error(`bench: ${JSON.stringify(rows.at(-1))}`); // progress, in case a long run is cut short
    if (rows.length === 1) for (let i = 0; i < resumes && ids.length > 1; i++) resumeMs.early.push(await resumeOne(ids[0]!));
  }
  for (let i = 0; i < resumes && ids.length > 0; i++) resumeMs.late.push(await resumeOne(ids[ids.length - 1]!));
} finally {
  await stack.stop().catch((error: Error) => console.error(`bench: stopping failed: ${error.message}`));
  await rm(dir, { recursive: true, force: true });
}

if (values.json) {
  console.log(JSON.stringify({ count, batch, capacity, rows, resumeMs }, null, 2));
} else {
  const mib = (v: number) => `${(v / 2 ** 20).toFixed(1)} MiB`;
  console.table(
    rows.map((r) => ({
      suspended: r.suspended,
      "batch took": `${r.batchSeconds.toFixed(1)} s (${r.runsPerSecond.toFixed(1)} runs/s)`,
      "task processes": r.taskProcesses,
      "checkpoints on disk": mib(r.checkpointBytes),
      "per suspended run": mib(r.checkpointBytes / r.suspended),
      "server+runner RSS": mib(r.rssBytes),
      "heap used": mib(r.heapUsedBytes),
    })),
  );
  const list = (v: number[]) => (v.length ? v.map((ms) => `${ms} ms`).join(", ") : "–");
  console.log(`resume (event sent → code after the wait): after the first batch ${list(resumeMs.early)}; with ${rows.at(-1)?.suspended ?? 0} suspended ${list(resumeMs.late)}`);
}

/** Task processes alive: node processes running a bundle from the runner's image cache. */
async function countTaskProcesses(imageCache: string): Promise<number> {
  let n = 0;
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
    // The task itself (node on the bundle), not its namespace's unshare/bash wrappers.
    if (path.basename(argv[0] ?? "") === path.basename(process.execPath) && argv.some((a) => a.startsWith(imageCache))) n++;
  }
  return n;
}
