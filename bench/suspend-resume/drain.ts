// Drain rows: N runs executing on runner A (the platform in this process tree, process runtime);
// A drains (`runner.drain(grace, 0)`: every run checkpointed while it runs and handed over); runner B
// restores them. Measures the time until A's drain returned (the runner would exit) and until every
// run's process is restored and running on B. `--store dir` (default) shares one checkpoint
// directory; `--store registry` keeps checkpoints in Debian's docker-registry started here, so B
// downloads what A uploaded (as hosts that share no disk). Usage:
//   npx tsx bench/suspend-resume/drain.ts [--runs 1,4] [--mb 20] [--store dir|registry] [--json]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pino from "pino";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { startLocalStack } from "../../cli/local-stack.ts";
import { createDirCheckpointStore, createImageCache, createProcessRuntime, createRunner } from "../../runner/index.ts";
import { createRegistryCheckpointStore } from "../../runner/checkpoint-store/index.ts";
import { startRegistry, type TestRegistry } from "../../test/support/registry.ts";
import type { RunView } from "../../schemas/index.ts";
import { pollFor } from "./util.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "1,4" }, mb: { type: "string", default: "20" }, store: { type: "string", default: "dir" }, json: { type: "boolean", default: false } } });
if (values.store !== "dir" && values.store !== "registry") {
  console.error(`usage: drain.ts [--runs 1,4] [--mb 20] [--store dir|registry] [--json] (got --store ${values.store})`);
  process.exit(2);
}
const counts = values.runs.split(",").map(Number);
const mb = Number(values.mb);
const dir = await mkdtemp(path.join(tmpdir(), "stasis-bench-drain-"));
const log = pino({ level: "warn" }, pino.destination(2));
/** When each run's process was restored on a runner (the runner's "run restored" line). */
const restoredAt = new Map<string, number>();
const runnerLog = pino({ level: "info" }, { write: (line: string) => void (line.includes('"run restored"') && restoredAt.set((JSON.parse(line) as { runId: string }).runId, Date.now())) });
const registry: TestRegistry | null = values.store === "registry" ? await startRegistry() : null;
const checkpointRepository = "bench/checkpoints";
console.error(`bench: starting the platform (embedded PostgreSQL, server, runner A; ${values.store} checkpoint store) and deploying the task`);
const local = await startLocalStack({ stateDir: dir, runners: 1, capacity: Math.max(...counts), warmProcesses: 0, log, checkpointStore: registry ? { kind: "registry", repository: `${registry.host}/${checkpointRepository}` } : undefined });
const results: Array<{ store: string; runs: number; mb: number; drainMs: number; elsewhereMs: number }> = [];
try {
  const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(local.apiUrl, local.adminToken, "POST", "/api/v1/admin/projects", { slug: "bench" });
  const apiKey = created.environments.find((e) => e.environment === "development")!.apiKey;
  const api = <T>(method: string, route: string, body?: unknown) => callStasisApi<T>(local.apiUrl, apiKey, method, route, body);
  await deployProject({ projectDir: path.join(import.meta.dirname, "project"), apiUrl: local.apiUrl, apiKey, store: createLayoutImageStore(local.dirs.images), promote: true, withRuntime: false });
  let runnerA = local.runners[0]!;
  const newRunner = async (name: string) => {
    const runner = createRunner({
      serverUrl: local.apiUrl,
      runnerToken: local.runnerToken,
      name,
      capacity: Math.max(...counts),
      runtime: await createProcessRuntime({ workDir: path.join(dir, name) }),
      checkpoints: registry ? createRegistryCheckpointStore({ url: registry.url, repository: checkpointRepository }) : createDirCheckpointStore(local.dirs.checkpoints),
      appDirFor: createImageCache(local.dirs.imageCache),
      workDir: path.join(dir, name),
      log: runnerLog,
    });
    await runner.start();
    return runner;
  };
  for (const n of counts) {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await api<{ id: string }>("POST", "/api/v1/tasks/keep-running/trigger", { payload: { mb, seconds: 600 } })).id);
    const views = () => Promise.all(ids.map((id) => api<RunView>("GET", `/api/v1/runs/${id}`)));
    await pollFor(async () => ((await views()).every((v) => v.status === "EXECUTING" && v.attemptDetails?.at(-1)?.runnerId === runnerA.id) ? true : undefined), 120_000, `${n} runs to execute on runner A`);
    await pollFor(async () => ((await Promise.all(ids.map((id) => api<{ data: Array<{ message: string }> }>("GET", `/api/v1/runs/${id}/logs`)))).every((l) => l.data.some((x) => x.message === "state built")) ? true : undefined), 120_000, "the state to be built");
    const runnerB = await newRunner(`runner-b-${n}`);
    console.error(`bench: draining runner A with ${n} running run(s) of ~${mb} MB`);
    const started = Date.now();
    await runnerA.drain(120_000, 0);
    const drainMs = Date.now() - started;
    // Claimed by B, and their processes restored there.
    await pollFor(async () => ((await views()).every((v) => v.status === "EXECUTING" && v.attemptDetails?.at(-1)?.runnerId === runnerB.id) ? true : undefined), 120_000, `the ${n} runs to execute on runner B`);
    await pollFor(async () => (ids.every((id) => (restoredAt.get(id) ?? 0) >= started) ? true : undefined), 120_000, `the ${n} runs to be restored on runner B`);
    const elsewhereMs = Math.max(...ids.map((id) => restoredAt.get(id)!)) - started;
    results.push({ store: values.store, runs: n, mb, drainMs, elsewhereMs });
    for (const id of ids) await api("POST", `/api/v1/runs/${id}/cancel`);
    runnerA = runnerB; // the next row drains B onto a new runner
  }
  await runnerA.drain(10_000, 0).catch(() => {});
} finally {
  await local.stop().catch((error: Error) => console.error(`bench: stopping failed: ${error.message}`));
  await registry?.stop().catch(() => {});
  await rm(dir, { recursive: true, force: true }).catch(() => {});
}
if (values.json) console.log(JSON.stringify({ results }));
else {
  console.log(`\ndrain of N running runs (~${mb} MB each, ${values.store} checkpoint store): checkpointed running, handed over, restored on another runner`);
  console.table(Object.fromEntries(results.map((r) => [`${r.runs} run(s)`, { "drain (runner A exits)": `${r.drainMs} ms`, "all running again on runner B": `${r.elsewhereMs} ms` }])));
}
process.exit(0);
