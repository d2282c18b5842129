import { hostname } from "node:os";
import type { Logger } from "pino";
import type { ClaimedRun, PollResponse } from "../schemas/index.ts";
import type { CheckpointStore } from "./checkpoint-store/index.ts";
import { createHeartbeatLoop } from "./heartbeat-loop.ts";
import { createLeaseClock } from "./lease-clock.ts";
import { createPollLoop } from "./poll-loop.ts";
import { retryCall } from "./retry-call.ts";
import { createWarmPool } from "./warm-pool.ts";
import { createKeepAlivePool } from "./keep-alive.ts";
import { createLocalCheckpoints, removeOrphanedDumps } from "./local-checkpoints.ts";
import { checkpointSite } from "./checkpoint-site.ts";
import { ownScratchDir, removeOrphanedScratch } from "./scratch-dir.ts";
import { createStoppedProcesses } from "./stopped-processes.ts";
import type { TaskSandboxPolicy } from "./task-sandboxes.ts";
import { startRunSession, type RunSession } from "./run-session.ts";
import { createServerClient } from "./server-client.ts";
import { createSlots } from "./slots.ts";
import { createStackMapper } from "./stack-mapper.ts";
import type { WorkloadRuntime } from "./workload/index.ts";

export interface RunnerOptions {
  serverUrl: string;
  runnerToken: string;
  name?: string;
  /** How many runs may hold a process here at once (suspended runs hold none). */
  capacity: number;
  runtime: WorkloadRuntime;
  checkpoints: CheckpointStore | null;
  appDirFor: (deployment: ClaimedRun["deployment"]) => Promise<string>;
  /** Given with a runtime that runs the image's own rootfs (runc, container). */
  rootfsFor?: (deployment: ClaimedRun["deployment"]) => Promise<string>;
  /** What the runner tells the server it runs tasks with. Default "process". */
  workload?: "process" | "runc" | "container";
  workDir: string;
  suspendThresholdMs?: number;
  taskEnv?: Record<string, string>;
  /** Run task processes as their environment's own unprivileged user, seeing only what they need (needs root; null/absent: as the runner's user). */
  taskSandbox?: TaskSandboxPolicy | null;
  /**
   * The most started, never-used task processes kept per recent deployment, so that a run skips
   * Node's start-up (warm-pool.ts: one at first, more while runs come faster than a spare boots,
   * back to one when unused for a minute): at most this many and at most the free slots (but one
   * when every slot is busy). Default `"slots"`: as many as the free slots; 0 keeps none.
   */
  warmProcesses?: number | "slots";
  log: Logger;
  /**
   * How many bytes of its own dumps the runner keeps in clear on its disk for a resume here (see
   * local-checkpoints.ts). Default 0: none, every resume fetches the sealed checkpoint — a kept dump is the
   * process's memory unencrypted on this disk while the run waits, which an operator opts into.
   */
  localCheckpointBytes?: number;
  /**
   * How much memory (counted by dump size) the runner may hold in processes of suspended runs, kept
   * stopped after their dump for up to a minute, so that a resume here continues the process instead of
   * restoring it (stopped-processes.ts; runtimes with `checkpoints.stops`). Default 0: none — a
   * suspended run holds no memory here.
   */
  keepStoppedBytes?: number;
  /** Called after each poll with what it brought (progress display, tests); logged at debug level too ("run event"). */
  onEvent?: (event: RunnerEvent) => void;
}

export interface RunnerEvent {
  type: "claimed" | "suspended" | "finished" | "stopped";
  runId: string;
}

/**
 * The runner daemon: registers, long-polls the server for runs and wake-ups (poll-loop.ts) with the
 * slots it has free (slots.ts), keeps its leases alive with heartbeats (heartbeat-loop.ts), and on
 * `drain()` stops claiming, lets runs finish for a grace period, then gives the rest back.
 */
export function createRunner(options: RunnerOptions) {
  const server = createServerClient({ serverUrl: options.serverUrl, runnerToken: options.runnerToken });
  const log = options.log;
  // At debug level also for a runner in a process of its own (bench/suspend-resume reads them from its output).
  const emit = (event: RunnerEvent) => {
    log.debug({ runId: event.runId, event: event.type }, "run event");
    options.onEvent?.(event);
  };
  const sessions = new Map<string, RunSession>();
  const closing = new AbortController();
  let runnerId = "";
  /** The runner's own setting wins; else the server's (register response); else 5 s. */
  let suspendThresholdMs = options.suspendThresholdMs ?? 5000;
  /** Until the register answer says otherwise: the server's default lease. */
  const leases = createLeaseClock(30_000);
  /** This process's scratch under the work dir (scratch-dir.ts), made by `start()`. */
  let scratchDir = "";
  const local = options.checkpoints && options.localCheckpointBytes ? createLocalCheckpoints(options.checkpoints, { workDir: options.workDir, maxBytes: options.localCheckpointBytes }) : null;
  const stoppedProcesses = options.checkpoints && options.keepStoppedBytes && options.runtime.checkpoints.stops ? createStoppedProcesses({ maxBytes: options.keepStoppedBytes }) : null;
  const stored = local?.store ?? options.checkpoints;
  // A deleted checkpoint (its run ended, or moved on) takes the process kept stopped for it along.
  const checkpoints = stored && stoppedProcesses ? { ...stored, delete: async (location: string) => void (await Promise.all([stoppedProcesses.drop(location), stored.delete(location)])) } : stored;
  const slots = createSlots(options.capacity, () => [...sessions.values()].filter((s) => s.holdsSlot).length);
  // Spares for as many runs as could start here right now (at least one), up to the setting, bounded by free memory in the pool.
  const sparesWanted = options.warmProcesses ?? "slots";
  const warmPool =
    sparesWanted === 0
      ? undefined
      : createWarmPool({
          sparesPerKey: () => Math.min(sparesWanted === "slots" ? Infinity : sparesWanted, Math.max(1, options.capacity - slots.busy())),
          // The key's other parts (the environment, a digest of its variables) stay out of the log.
          onReady: (key) => log.debug({ deploymentId: key.split(":")[0] }, "spare task process ready"),
        });
  // Processes of tasks with processKeepAlive, idle between runs (the process runtime only: runc starts each run in its own container).
  const keepAlive = options.rootfsFor ? undefined : createKeepAlivePool({ maxIdle: options.capacity });
  const stacks = createStackMapper();
  const polls = createPollLoop({ server, runnerId: () => runnerId, slots, handle, onPollFailed: recheckWaits, signal: closing.signal, log });
  const heartbeats = createHeartbeatLoop({
    server,
    runnerId: () => runnerId,
    leases,
    held: () => [...sessions.values()].map((s) => ({ runId: s.runId, leaseId: s.leaseId })),
    leaseOf: (runId) => sessions.get(runId)?.leaseId,
    onLost: (runId) => void sessions.get(runId)?.stop("the server gave this run's lease to someone else", "lost"),
    signal: closing.signal,
    log,
  });

  function track(claim: ClaimedRun): void {
    const session = startRunSession(claim, {
      server,
      runtime: options.runtime,
      checkpoints,
      localCheckpoints: local,
      stoppedProcesses,
      appDirFor: options.appDirFor,
      rootfsFor: options.rootfsFor,
      scratchDir,
      suspendThresholdMs,
      taskEnv: options.taskEnv ?? {},
      taskSandbox: options.taskSandbox,
      warmPool,
      keepAlive,
      stacks,
      // Reported as soon as the process is gone; storing the checkpoint goes on in the background.
      onSlotFreed: () => {
        emit({ type: "suspended", runId: claim.runId });
        void polls.claimFreedSlots();
      },
      leaseValidUntil: () => leases.reportableUntil(claim.runId),
      signal: closing.signal,
      log: log.child({ runId: claim.runId, attempt: claim.attempt }),
    });
    leases.claimed(claim.runId);
    sessions.set(claim.runId, session);
    emit({ type: "claimed", runId: claim.runId });
    void session.done.then((outcome) => {
      if (sessions.get(claim.runId) === session) {
        sessions.delete(claim.runId);
        leases.forget(claim.runId);
      }
      if (outcome !== "suspended") emit({ type: outcome === "finished" ? "finished" : "stopped", runId: claim.runId });
      void polls.claimFreedSlots();
    });
  }

  function handle(response: PollResponse): void {
    for (const claim of response.runs) track(claim);
    for (const next of response.continues) sessions.get(next.runId)?.continueWait(next.waitpointId, next.result);
    for (const stop of response.stops) void sessions.get(stop.runId)?.stop(stop.reason);
    for (const location of response.deleteCheckpoints ?? []) {
      void checkpoints?.delete(location).catch((error: Error) => log.warn({ location, err: error.message }, "could not delete a canceled run's checkpoint"));
    }
  }

  /**
   * A poll that failed may have been answered and the answer lost (the server died mid-reply): the
   * continues in it moved their runs to EXECUTING on the server. Each run waiting here asks for its
   * wait's result again, so none waits for good for a continue that will not come twice.
   */
  function recheckWaits(): void {
    for (const session of sessions.values()) void session.recheckWait();
  }

  return {
    get id() {
      return runnerId;
    },
    get activeRuns() {
      return sessions.size;
    },
    async start(): Promise<void> {
      // What a runner killed on this work dir left of its tasks' memory in clear (dumps kept, dumps and restores
      // under way) goes before this one takes any work.
      if (options.checkpoints) {
        const [dumps, scratch] = await Promise.all([removeOrphanedDumps(options.workDir), removeOrphanedScratch(options.workDir)]);
        if (dumps + scratch > 0) log.info({ dumps, scratch }, "removed dumps left by a runner that is gone");
      }
      scratchDir = await ownScratchDir(options.workDir);
      // Keeping dumps, it says where: a resume its holder has no slot for may come to a runner beside it.
      const site = local ? await checkpointSite(options.workDir) : null;
      const registered = await server.register({
        name: options.name ?? `${hostname()}-${process.pid}`,
        capacity: options.capacity,
        checkpoints: Boolean(options.checkpoints && options.runtime.checkpoints.available),
        workload: options.workload ?? "process",
        ...(site ? { checkpointSite: site } : {}),
      });
      runnerId = registered.runnerId;
      leases.leaseMs = registered.leaseMs;
      if (options.suspendThresholdMs === undefined && registered.suspendThresholdMs !== undefined) suspendThresholdMs = registered.suspendThresholdMs;
      heartbeats.start(registered.heartbeatIntervalMs);
      polls.start();
      log.info({ runnerId, capacity: options.capacity, checkpoints: options.runtime.checkpoints }, "runner started");
    },
    /**
     * Stop claiming; let runs finish for `finishMs` (default: half of `graceMs`); then checkpoint each run
     * still here and hand it to the server to resume elsewhere where it was (when this runner checkpoints);
     * give back whatever is left at the end of `graceMs` (from its last checkpoint, or from the start).
     */
    async drain(graceMs = 30_000, finishMs?: number): Promise<void> {
      slots.drain();
      polls.cut();
      const started = Date.now();
      const deadline = started + graceMs;
      const handsOver = Boolean(options.checkpoints && options.runtime.checkpoints.available);
      const finishUntil = handsOver ? started + Math.min(graceMs, finishMs ?? Math.floor(graceMs / 2)) : deadline;
      while (sessions.size > 0 && Date.now() < finishUntil) await Promise.race([...[...sessions.values()].map((s) => s.done), new Promise((r) => setTimeout(r, 100))]);
      if (handsOver && sessions.size > 0 && Date.now() < deadline) {
        const holding = [...sessions.values()];
        const moved = await Promise.all(holding.map((s) => s.handOver(deadline)));
        log.info({ runs: holding.length, handedOver: moved.filter(Boolean).length, ms: Date.now() - started }, "drain: runs checkpointed and handed over");
      }
      const remaining = [...sessions.values()];
      if (remaining.length > 0) {
        const giveUpAt = Math.max(...remaining.map((s) => leases.validUntil(s.runId)));
        await retryCall(() => server.release({ runnerId, leases: remaining.map((s) => ({ runId: s.runId, leaseId: s.leaseId })) }), {
          what: "release runs",
          giveUpAt: () => giveUpAt,
          onRetry: (error, delayMs) => log.warn({ err: error.message, retryInMs: delayMs }, "could not release runs; retrying"),
        }).catch((error: Error) => log.warn({ err: error.message }, "release failed"));
        await Promise.all(remaining.map((s) => s.stop("runner shutting down; the run was given back")));
      }
      await this.close();
    },
    async close(): Promise<void> {
      const stopping = polls.stop();
      closing.abort();
      heartbeats.stop();
      await stopping;
      await Promise.all([...sessions.values()].map((s) => s.stop("runner closed")));
      await warmPool?.close();
      await keepAlive?.close();
      await local?.close();
      await stoppedProcesses?.close();
    },
  };
}

export type Runner = ReturnType<typeof createRunner>;
