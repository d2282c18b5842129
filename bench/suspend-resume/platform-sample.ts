import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import pino from "pino";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { startLocalStack, type LocalStack } from "../../cli/local-stack.ts";
import type { RunView } from "../../schemas/index.ts";
import { pollFor } from "./util.ts";

export interface PlatformSample {
  /** trigger sent → first line of run(). */
  coldStartMs: number;
  /** trigger sent → state built. */
  coldReadyMs: number;
  /** wait called → the runner freed the slot (the process is dumped; storing the checkpoint goes on). */
  suspendMs: number;
  /** the runner's split of that: CRIU dump alone, and prepare → dump → stored (before reporting it). */
  dumpMs: number;
  runnerSuspendMs: number;
  /** event sent (completes the waitpoint) → code after the wait running, on the restored process. */
  resumeMs: number;
  /** the part of that before a runner holds the resume claim (server, NOTIFY, long poll). */
  claimMs: number;
  imageBytes: number;
  storedBytes: number;
  rssBytes: number;
}

interface SuspendLog {
  runId: string;
  dumpMs: number;
  sizeBytes: number;
  storedBytes: number;
  suspendMs: number;
  /** The runner's steps (session/timeline.ts): from the wait's call, and inside the runtime's dump. */
  timeline: Record<string, number>;
  dumpSteps?: Record<string, number>;
}

interface RestoreLog {
  runId: string;
  /** From the resume's claim. */
  timeline: Record<string, number>;
}

/**
 * The whole platform in this process tree — embedded PostgreSQL, the server, one runner with the
 * process runtime and dir checkpoint store — and the `hold-state` task deployed to it.
 */
export async function startPlatform(dir: string, options: { localCheckpointBytes?: number; keepStoppedBytes?: number; name?: string } = {}) {
  const suspendLogs: SuspendLog[] = [];
  const slotFreed = new Map<string, number>();
  const finished = new Set<string>();
  const claims = new Map<string, number[]>();
  const restoreLogs: RestoreLog[] = [];
  const log = pino({ level: "info" }, {
    write: (line: string) => {
      if (line.includes('"run suspended"')) suspendLogs.push(JSON.parse(line));
      if (line.includes('"run restored"')) restoreLogs.push(JSON.parse(line));
    },
  });
  const local: LocalStack = await startLocalStack({
    stateDir: path.join(dir, options.name ?? "platform"),
    runners: 1,
    capacity: 2,
    // Its first row is a cold start: no spare process waits for the run.
    warmProcesses: 0,
    localCheckpointBytes: options.localCheckpointBytes,
    keepStoppedBytes: options.keepStoppedBytes,
    log,
    onRunnerEvent: (event) => {
      if (event.type === "suspended") slotFreed.set(event.runId, Date.now());
      else if (event.type === "claimed") claims.set(event.runId, [...(claims.get(event.runId) ?? []), Date.now()]);
      else if (event.type !== "claimed") finished.add(event.runId);
    },
  });
  const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(local.apiUrl, local.adminToken, "POST", "/api/v1/admin/projects", { slug: "bench" });
  const apiKey = created.environments.find((e) => e.environment === "development")!.apiKey;
  const api = <T>(method: string, route: string, body?: unknown) => callStasisApi<T>(local.apiUrl, apiKey, method, route, body);
  await deployProject({ projectDir: path.join(import.meta.dirname, "project"), apiUrl: local.apiUrl, apiKey, store: createLayoutImageStore(local.dirs.images), promote: true, withRuntime: false });

  async function sample(mb: number): Promise<PlatformSample> {
    const triggered = Date.now();
    const { id } = await api<{ id: string }>("POST", "/api/v1/tasks/hold-state/trigger", { payload: { mb } });
    const freedAt = await pollFor(async () => {
      const at = slotFreed.get(id);
      if (at === undefined && finished.has(id)) {
        const view = await api<RunView>("GET", `/api/v1/runs/${id}`);
        throw new Error(`run ${id} ended ${view.status} instead of suspending: ${JSON.stringify(view.error)}`);
      }
      return at;
    }, 120_000, `run ${id} to suspend`);
    // The slot is free once the process is dumped; the checkpoint is stored and reported after that.
    await pollFor(async () => suspendLogs.some((l) => l.runId === id) || undefined, 120_000, `run ${id}'s checkpoint to be stored`);
    await pollFor(async () => (await api<RunView>("GET", `/api/v1/runs/${id}`)).status === "SUSPENDED" || undefined, 120_000, `run ${id} to be SUSPENDED`);
    const suspended = suspendLogs.find((l) => l.runId === id)!;
    const checkpoint = await onlyFile(local.dirs.checkpoints);

    const sent = Date.now();
    await api("POST", "/api/v1/events", { event: "bench.go", payload: { runId: id } });
    const posted = Date.now() - sent;
    // Watched in this process, not through the API: a GET every 2 ms would take a core's share from the resume it measures.
    await pollFor(async () => finished.has(id) || undefined, 120_000, `run ${id} to finish`);
    const done = await pollFor(async () => {
      const view = await api<RunView>("GET", `/api/v1/runs/${id}`);
      return ["COMPLETED", "FAILED", "CANCELED"].includes(view.status) ? view : undefined;
    }, 120_000, `run ${id}'s end to be recorded`);
    if (done.status !== "COMPLETED") throw new Error(`run ${id} ended ${done.status}: ${JSON.stringify(done.error)}`);
    const restored = restoreLogs.find((l) => l.runId === id);
    const out = done.output as { started: number; ready: number; waitCalled: number; resumed: number; rss: number };
    console.error(`bench: ${options.name ?? "platform"} ${mb} MB suspend steps (ms from the wait's call) ${JSON.stringify(suspended.timeline)}, dump steps ${JSON.stringify(suspended.dumpSteps)}; resume: event answered after ${posted} ms, claimed after ${claims.get(id)![1]! - sent} ms, then steps (ms from the claim) ${JSON.stringify(restored?.timeline)}, code after the wait at ${out.resumed - sent} ms`);
    return {
      coldStartMs: out.started - triggered,
      coldReadyMs: out.ready - triggered,
      suspendMs: freedAt - out.waitCalled,
      dumpMs: suspended.dumpMs,
      runnerSuspendMs: suspended.suspendMs,
      resumeMs: out.resumed - sent,
      claimMs: claims.get(id)![1]! - sent,
      imageBytes: suspended.sizeBytes,
      storedBytes: checkpoint.size,
      rssBytes: out.rss,
    };
  }

  return { sample, stop: () => local.stop() };
}

/** The one checkpoint file in the store (the bench holds one suspended run at a time). */
async function onlyFile(root: string): Promise<{ file: string; size: number }> {
  const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  if (files.length !== 1) throw new Error(`expected one checkpoint in ${root}, found ${files.length}`);
  const file = path.join(files[0]!.parentPath, files[0]!.name);
  return { file, size: (await stat(file)).size };
}
