import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
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

export interface PlatformOptions {
  localCheckpointBytes?: number;
  keepStoppedBytes?: number;
  name?: string;
  /** The runner as its own `stasis runner` process, as deployed, instead of in this process beside the server. */
  runnerProcess?: boolean;
  /** Task processes in the runner's sandbox (their own user and root, as a runner started as root gives them by default). */
  sandbox?: boolean;
  /**
   * The resume on another runner with the dump already on its disk: two runner processes of one slot each on one
   * work dir (one checkpoint site); once the run has suspended, the one holding its dump is kept busy by a
   * `keep-running` run, and the resume goes to the other one, which takes that dump by a rename.
   */
  resumeBeside?: boolean;
}

/**
 * The whole platform in this process tree — embedded PostgreSQL, the server, one runner with the
 * process runtime and dir checkpoint store — and the `hold-state` task deployed to it.
 */
export async function startPlatform(dir: string, options: PlatformOptions = {}) {
  const suspendLogs: SuspendLog[] = [];
  const slotFreed = new Map<string, number>();
  const finished = new Set<string>();
  const claims = new Map<string, number[]>();
  const restoreLogs: RestoreLog[] = [];
  const onRunnerEvent = (type: string, runId: string, at: number) => {
    if (type === "suspended") slotFreed.set(runId, at);
    else if (type === "claimed") claims.set(runId, [...(claims.get(runId) ?? []), at]);
    else finished.add(runId);
  };
  const onLogLine = (line: string) => {
    if (line.includes('"run suspended"')) suspendLogs.push(JSON.parse(line));
    if (line.includes('"run restored"')) restoreLogs.push(JSON.parse(line));
  };
  const stateDir = path.join(dir, options.name ?? "platform");
  const runnerOptions = { localCheckpointBytes: options.localCheckpointBytes, keepStoppedBytes: options.keepStoppedBytes };
  const local: LocalStack = await startLocalStack({
    stateDir,
    runners: options.runnerProcess || options.resumeBeside ? 0 : 1,
    capacity: 2,
    // Its first row is a cold start: no spare process waits for the run.
    warmProcesses: 0,
    ...(options.runnerProcess || options.resumeBeside ? {} : { ...runnerOptions, taskSandbox: options.sandbox ?? false }),
    log: pino({ level: "info" }, { write: onLogLine }),
    onRunnerEvent: (event) => onRunnerEvent(event.type, event.runId, Date.now()),
  });
  const onRunnerLine = (line: string) => {
    onLogLine(line);
    // The runner's events, at the time it logged them (its debug lines).
    if (line.includes('"run event"')) {
      const { event, runId, time } = JSON.parse(line) as { event: string; runId: string; time: number };
      onRunnerEvent(event, runId, time);
    }
  };
  const runnerWorkDir = path.join(stateDir, "runner-process");
  const runnerProcessOptions = { ...runnerOptions, sandbox: options.sandbox ?? false, capacity: options.resumeBeside ? 1 : 2 };
  const runner = options.runnerProcess || options.resumeBeside ? await startRunnerProcess(local, runnerWorkDir, runnerProcessOptions, onRunnerLine) : null;
  // A second runner on the same work dir (one checkpoint site), started once: warm, as a runner beside another is.
  const besideRunner = options.resumeBeside ? await startRunnerProcess(local, runnerWorkDir, { ...runnerProcessOptions, name: "bench-beside" }, onRunnerLine) : null;
  const runnerIds = [runner?.runnerId, besideRunner?.runnerId].filter((id): id is string => id !== undefined);
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

    const beside = options.resumeBeside ? await busyHolder(id) : null;
    const sent = Date.now();
    await api("POST", "/api/v1/events", { event: "bench.go", payload: { runId: id } });
    const posted = Date.now() - sent;
    // Watched in this process, not through the API: a GET every 2 ms would take a core's share from the resume it measures.
    await pollFor(async () => finished.has(id) || undefined, 120_000, `run ${id} to finish`);
    const done = await pollFor(async () => {
      const view = await api<RunView>("GET", `/api/v1/runs/${id}`);
      return ["COMPLETED", "FAILED", "CANCELED"].includes(view.status) ? view : undefined;
    }, 120_000, `run ${id}'s end to be recorded`);
    await beside?.stop();
    if (done.status !== "COMPLETED") throw new Error(`run ${id} ended ${done.status}: ${JSON.stringify(done.error)}`);
    const resumedBy = done.attemptDetails?.at(-1)?.runnerId;
    if (beside && resumedBy !== beside.runnerId) throw new Error(`run ${id} was resumed by ${resumedBy}, not by the runner beside its holder (${beside.runnerId})`);
    const restored = restoreLogs.find((l) => l.runId === id);
    const out = done.output as { started: number; ready: number; waitCalled: number; resumed: number; rss: number };
    console.error(`bench: ${options.name ?? "platform"} ${mb} MB suspend ${freedAt - out.waitCalled} ms from the task's call, steps (ms from the runner's receipt of it) ${JSON.stringify(suspended.timeline)}, dump steps ${JSON.stringify(suspended.dumpSteps)}; resume: event answered after ${posted} ms, claimed after ${claims.get(id)![1]! - sent} ms, then steps (ms from the claim) ${JSON.stringify(restored?.timeline)}, code after the wait at ${out.resumed - sent} ms`);
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

  /**
   * The holder of `runId`'s dump made busy (its one slot taken by a `keep-running` run) while the other runner on its
   * work dir has its slot free: blockers are triggered until one runs on the holder, and any that went to the other
   * runner are canceled and seen to end there. `stop` cancels the holder's.
   */
  async function busyHolder(runId: string) {
    const runnerOf = async (id: string) => (await api<RunView>("GET", `/api/v1/runs/${id}`)).attemptDetails?.at(-1)?.runnerId;
    const holder = await runnerOf(runId);
    const blockers: Array<{ id: string; runnerId: string }> = [];
    while (!blockers.some((b) => b.runnerId === holder)) {
      const { id } = await api<{ id: string }>("POST", "/api/v1/tasks/keep-running/trigger", { payload: { mb: 1, seconds: 300 } });
      const runnerId = await pollFor(async () => ((await api<RunView>("GET", `/api/v1/runs/${id}`)).status === "EXECUTING" ? runnerOf(id) : undefined), 60_000, `run ${id} to take a slot`);
      blockers.push({ id, runnerId: runnerId! });
    }
    for (const b of blockers.filter((b) => b.runnerId !== holder)) {
      await api("POST", `/api/v1/runs/${b.id}/cancel`);
      await pollFor(async () => finished.has(b.id) || undefined, 60_000, `run ${b.id} to end on the runner beside the holder`);
    }
    const other = [...runnerIds].find((id) => id !== holder)!;
    return {
      runnerId: other,
      async stop() {
        for (const b of blockers.filter((b) => b.runnerId === holder)) await api("POST", `/api/v1/runs/${b.id}/cancel`);
      },
    };
  }

  return {
    sample,
    async stop() {
      await besideRunner?.stop();
      await runner?.stop();
      await local.stop();
    },
  };
}

/** `stasis runner` on `local`'s server, image cache and checkpoint dir; each log line to `onLine`. */
async function startRunnerProcess(local: LocalStack, workDir: string, options: { localCheckpointBytes?: number; keepStoppedBytes?: number; sandbox: boolean; capacity: number; name?: string }, onLine: (line: string) => void) {
  const mib = (bytes = 0) => String(Math.floor(bytes / 2 ** 20));
  const args = ["runner", "--server-url", local.apiUrl, "--name", options.name ?? "bench", "--capacity", String(options.capacity), "--work-dir", workDir, "--image-cache", local.dirs.imageCache, "--checkpoint-dir", local.dirs.checkpoints, "--warm-processes", "0", "--local-checkpoints", mib(options.localCheckpointBytes), "--keep-stopped", mib(options.keepStoppedBytes)];
  const child = spawn(process.execPath, [path.join(import.meta.dirname, "../../cli/bin.mjs"), ...args], {
    env: { ...process.env, STASIS_RUNNER_TOKEN: local.runnerToken, STASIS_LOG_LEVEL: "debug", STASIS_TASK_SANDBOX: options.sandbox ? "on" : "off" },
    stdio: ["ignore", "inherit", "pipe"],
  });
  const exited = once(child, "exit");
  const started = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (!line.startsWith("{")) return void process.stderr.write(`runner: ${line}\n`);
      if (line.includes('"runner started"')) resolve((JSON.parse(line) as { runnerId: string }).runnerId);
      onLine(line);
    });
    void exited.then(([code]) => reject(new Error(`the runner exited (${code}) before it started`)));
  });
  const runnerId = await started;
  return {
    runnerId,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** The one checkpoint file in the store (the bench holds one suspended run at a time). */
async function onlyFile(root: string): Promise<{ file: string; size: number }> {
  const files = (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  if (files.length !== 1) throw new Error(`expected one checkpoint in ${root}, found ${files.length}`);
  const file = path.join(files[0]!.parentPath, files[0]!.name);
  return { file, size: (await stat(file)).size };
}
