import { hostname } from "node:os";
import type { Logger } from "pino";
import type { ClaimedRun, PollResponse } from "../schemas/index.ts";
import type { CheckpointStore } from "./checkpoint-store/index.ts";
import { createLeaseClock } from "./lease-clock.ts";
import { retryCall } from "./retry-call.ts";
import { createWarmPool } from "./warm-pool.ts";
import { createKeepAlivePool } from "./keep-alive.ts";
import type { TaskSandboxPolicy } from "./task-sandboxes.ts";
import { startRunSession, type RunSession } from "./run-session.ts";
import { createServerClient } from "./server-client.ts";
import type { WorkloadRuntime } from "./workload/index.ts";

const LONG_POLL_MS = 10_000;
const SHORT_POLL_MS = 1_000;

export interface RunnerOptions {
  serverUrl: string;
  runnerToken: string;
  name?: string;
  /** How many runs may hold a process here at once (suspended runs hold none). */
  capacity: number;
  runtime: WorkloadRuntime;
  checkpoints: CheckpointStore | null;
  appDirFor: (deployment: ClaimedRun["deployment"]) => Promise<string>;
  /** Given with a runtime that runs the image's own rootfs (runc). */
  rootfsFor?: (deployment: ClaimedRun["deployment"]) => Promise<string>;
  /** What the runner tells the server it runs tasks with. Default "process". */
  workload?: "process" | "runc";
  workDir: string;
  suspendThresholdMs?: number;
  taskEnv?: Record<string, string>;
  /** Run task processes as their environment's own unprivileged user, seeing only what they need (needs root; null/absent: as the runner's user). */
  taskSandbox?: TaskSandboxPolicy | null;
  /** Keep idle, never-used task processes per recent deployment (one per free slot) to skip Node's start-up (default false). */
  warmProcesses?: boolean;
  log: Logger;
  /** Called after each poll with what it brought (progress display, tests). */
  onEvent?: (event: { type: "claimed" | "suspended" | "finished" | "stopped"; runId: string }) => void;
}

/**
 * The runner daemon: registers, long-polls the server for runs and wake-ups, keeps its leases alive
 * with heartbeats, and on `drain()` stops claiming, lets runs finish for a grace period, then gives
 * the rest back.
 */
export function createRunner(options: RunnerOptions) {
  const server = createServerClient({ serverUrl: options.serverUrl, runnerToken: options.runnerToken });
  const log = options.log;
  const sessions = new Map<string, RunSession>();
  const pollAbort = new AbortController();
  /** The poll in flight: a drain cuts it, or it could claim (even the runs the drain gives back) for a runner that is leaving. */
  let pollInFlight: AbortController | null = null;
  let runnerId = "";
  /** The runner's own setting wins; else the server's (register response); else 5 s. */
  let suspendThresholdMs = options.suspendThresholdMs ?? 5000;
  let heartbeatTimer: NodeJS.Timeout | null = null;
  let heartbeatIntervalMs = 10_000;
  let polling = false;
  let draining = false;
  let loop: Promise<void> = Promise.resolve();
  /** Until the register answer says otherwise: the server's default lease. */
  const leases = createLeaseClock(30_000);
  // Spares for as many runs as could start here right now (at least one), bounded by free memory in the pool.
  const warmPool = options.warmProcesses ? createWarmPool({ sparesPerKey: () => Math.max(1, options.capacity - busySlots()) }) : undefined;
  // Processes of tasks with processKeepAlive, idle between runs (the process runtime only: runc starts each run in its own container).
  const keepAlive = options.rootfsFor ? undefined : createKeepAlivePool({ maxIdle: options.capacity });
  /** Slots the long poll in flight may fill; a quick poll offers only the others. */
  let slotsOfferedByLongPoll = 0;
  let quickPolling = false;
  let quickPollAgain = false;

  function track(claim: ClaimedRun): void {
    const session = startRunSession(claim, {
      server,
      runtime: options.runtime,
      checkpoints: options.checkpoints,
      appDirFor: options.appDirFor,
      rootfsFor: options.rootfsFor,
      workDir: options.workDir,
      suspendThresholdMs,
      taskEnv: options.taskEnv ?? {},
      taskSandbox: options.taskSandbox,
      warmPool,
      keepAlive,
      // Reported as soon as the process is gone; storing the checkpoint goes on in the background.
      onSlotFreed: () => {
        options.onEvent?.({ type: "suspended", runId: claim.runId });
        void claimFreedSlots();
      },
      leaseValidUntil: () => leases.reportableUntil(claim.runId),
      signal: pollAbort.signal,
      log: log.child({ runId: claim.runId, attempt: claim.attempt }),
    });
    leases.claimed(claim.runId);
    sessions.set(claim.runId, session);
    options.onEvent?.({ type: "claimed", runId: claim.runId });
    void session.done.then((outcome) => {
      if (sessions.get(claim.runId) === session) {
        sessions.delete(claim.runId);
        leases.forget(claim.runId);
      }
      if (outcome !== "suspended") options.onEvent?.({ type: outcome === "finished" ? "finished" : "stopped", runId: claim.runId });
      void claimFreedSlots();
    });
  }

  function handle(response: PollResponse): void {
    for (const claim of response.runs) track(claim);
    for (const next of response.continues) sessions.get(next.runId)?.continueWait(next.waitpointId, next.result);
    for (const stop of response.stops) void sessions.get(stop.runId)?.stop(stop.reason);
    for (const location of response.deleteCheckpoints ?? []) {
      void options.checkpoints?.delete(location).catch((error: Error) => log.warn({ location, err: error.message }, "could not delete a canceled run's checkpoint"));
    }
  }

  function busySlots(): number {
    return [...sessions.values()].filter((s) => s.holdsSlot).length;
  }

  /**
   * A poll that failed may have been answered and the answer lost (the server died mid-reply): the
   * continues in it moved their runs to EXECUTING on the server. Each run waiting here asks for its
   * wait's result again, so none waits for good for a continue that will not come twice.
   */
  function recheckWaits(): void {
    for (const session of sessions.values()) void session.recheckWait();
  }

  function freeSlotsNow(): number {
    if (draining) return 0;
    return Math.max(0, options.capacity - busySlots() - slotsOfferedByLongPoll);
  }

  async function pollLoop(): Promise<void> {
    let failures = 0;
    while (polling) {
      const thisPoll = new AbortController();
      pollInFlight = thisPoll;
      try {
        const freeSlots = freeSlotsNow();
        slotsOfferedByLongPoll = freeSlots;
        // A long poll offers the slots free when it starts. A slot freed meanwhile gets one quick poll, but a run
        // that becomes due after that (a frozen wait ending) could only be claimed when the long poll ends: with
        // 10 s polls, frozen waits ended up to 10 s late (bench/wait-latency). So poll long only when every slot
        // is on offer, else briefly.
        const waitMs = freeSlots >= options.capacity ? LONG_POLL_MS : SHORT_POLL_MS;
        const response = await server.poll({ runnerId, freeSlots, waitMs }, AbortSignal.any([pollAbort.signal, thisPoll.signal]));
        slotsOfferedByLongPoll = 0;
        failures = 0;
        handle(response);
      } catch (error) {
        slotsOfferedByLongPoll = 0;
        if (!polling) return;
        if (thisPoll.signal.aborted) continue; // drain began: poll again, claiming nothing
        failures += 1;
        const delay = Math.min(5000, 100 * 2 ** failures);
        log.warn({ err: (error as Error).message, retryInMs: delay }, "poll failed");
        recheckWaits();
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /**
   * A slot freed while the long poll waits with the slots that were free when it started: claim for
   * the new ones at once with a poll that does not wait, instead of idling until the long poll ends.
   */
  async function claimFreedSlots(): Promise<void> {
    if (!polling || quickPolling) {
      quickPollAgain = polling;
      return;
    }
    quickPolling = true;
    try {
      do {
        quickPollAgain = false;
        const freeSlots = freeSlotsNow();
        if (freeSlots === 0) break;
        handle(await server.poll({ runnerId, freeSlots, waitMs: 0 }, pollAbort.signal));
      } while (quickPollAgain && polling);
    } catch (error) {
      if (polling) log.warn({ err: (error as Error).message }, "claim after a freed slot failed; the long poll will pick runs up");
      recheckWaits();
    } finally {
      quickPolling = false;
    }
  }

  /**
   * Extends every lease held here — also of runs whose end or suspend is still being reported, so a
   * short server outage does not cost them their lease.
   */
  async function heartbeat(): Promise<void> {
    const held = [...sessions.values()].map((s) => ({ runId: s.runId, leaseId: s.leaseId }));
    const started = Date.now();
    let sentAt = started;
    try {
      // A failed beat is tried again at once (backoff) rather than at the next interval: after an outage the
      // leases are extended as soon as the server is back, before it sweeps them as expired.
      const { lost, leaseMs } = await retryCall(
        () => {
          sentAt = Date.now();
          return server.heartbeat({ runnerId, leases: held });
        },
        { what: "heartbeat", giveUpAt: () => started + heartbeatIntervalMs, signal: pollAbort.signal, maxMs: 1000 },
      );
      leases.leaseMs = leaseMs;
      const gone = new Set(lost);
      leases.renewed(held.filter((l) => !gone.has(l.runId) && sessions.get(l.runId)?.leaseId === l.leaseId).map((l) => l.runId), sentAt);
      // Only the lease this beat named: while the beat was in flight, the run's attempt may have ended and its next
      // attempt been claimed here under a new lease — an answer about the old lease must not stop the new attempt
      // (found by bench/chaos: a retried run stopped on this runner kept running, then ran again elsewhere).
      const sentLease = new Map(held.map((l) => [l.runId, l.leaseId]));
      for (const runId of lost) {
        const session = sessions.get(runId);
        if (session && session.leaseId === sentLease.get(runId)) void session.stop("the server gave this run's lease to someone else", "lost");
      }
    } catch (error) {
      log.warn({ err: (error as Error).message }, "heartbeat failed");
    }
  }

  return {
    get id() {
      return runnerId;
    },
    get activeRuns() {
      return sessions.size;
    },
    async start(): Promise<void> {
      const registered = await server.register({
        name: options.name ?? `${hostname()}-${process.pid}`,
        capacity: options.capacity,
        checkpoints: Boolean(options.checkpoints && options.runtime.checkpoints.available),
        workload: options.workload ?? "process",
      });
      runnerId = registered.runnerId;
      leases.leaseMs = registered.leaseMs;
      if (options.suspendThresholdMs === undefined && registered.suspendThresholdMs !== undefined) suspendThresholdMs = registered.suspendThresholdMs;
      heartbeatIntervalMs = registered.heartbeatIntervalMs;
      heartbeatTimer = setInterval(() => void heartbeat(), heartbeatIntervalMs);
      polling = true;
      loop = pollLoop();
      log.info({ runnerId, capacity: options.capacity, checkpoints: options.runtime.checkpoints }, "runner started");
    },
    /** Stop claiming; wait up to `graceMs` for running runs; give the rest back to the queue. */
    async drain(graceMs = 30_000): Promise<void> {
      draining = true;
      pollInFlight?.abort();
      const deadline = Date.now() + graceMs;
      while (sessions.size > 0 && Date.now() < deadline) await Promise.race([...[...sessions.values()].map((s) => s.done), new Promise((r) => setTimeout(r, 100))]);
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
      polling = false;
      pollAbort.abort();
      if (heartbeatTimer) clearInterval(heartbeatTimer);
      await loop.catch(() => {});
      await Promise.all([...sessions.values()].map((s) => s.stop("runner closed")));
      await warmPool?.close();
      await keepAlive?.close();
    },
  };
}

export type Runner = ReturnType<typeof createRunner>;
