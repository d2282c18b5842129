import type { Logger } from "pino";
import type { ClaimedRun, TaskCall, WaitResult, WaitSpec } from "../../schemas/index.ts";
import type { CheckpointStore } from "../checkpoint-store/index.ts";
import { createLogShipper } from "../log-shipper.ts";
import { retryCall } from "../retry-call.ts";
import type { ServerClient } from "../server-client.ts";
import type { TaskChannel } from "../task-channel.ts";
import type { TaskSandboxPolicy } from "../task-sandboxes.ts";
import type { KeepAlivePool } from "../keep-alive.ts";
import type { LocalCheckpoints } from "../local-checkpoints.ts";
import type { StackMapper } from "../stack-mapper.ts";
import type { StoppedProcesses } from "../stopped-processes.ts";
import type { WarmPool } from "../warm-pool.ts";
import type { TaskProcess, WorkloadRuntime } from "../workload/index.ts";
import { createSessionState, type SessionStateMachine } from "./states.ts";
import { createTimeline, type Timeline } from "./timeline.ts";

export interface RunSessionDeps {
  server: ServerClient;
  runtime: WorkloadRuntime;
  /** null: never suspend (runs stay alive while they wait). */
  checkpoints: CheckpointStore | null;
  /** Where this runner keeps its own dumps for a resume here (local-checkpoints.ts); null: it does not. */
  localCheckpoints?: LocalCheckpoints | null;
  /** Processes of suspended runs this runner keeps stopped for a resume here (stopped-processes.ts); null: it keeps none. */
  stoppedProcesses?: StoppedProcesses | null;
  /** Resolves a deployment to the directory holding its bundle (the image's app dir). */
  appDirFor(deployment: ClaimedRun["deployment"]): Promise<string>;
  /** The image's unpacked rootfs, for runtimes that run it (runc); tasks then get their `machine` limits too. */
  rootfsFor?(deployment: ClaimedRun["deployment"]): Promise<string>;
  /** This runner process's own scratch (runner/scratch-dir.ts): dumps and restores under way, the task's memory in clear. */
  scratchDir: string;
  suspendThresholdMs: number;
  /** Extra environment for task processes (e.g. the project's `.env`). */
  taskEnv: Record<string, string>;
  /** Run task processes as their environment's own unprivileged user, seeing only what they need (root only). */
  taskSandbox?: TaskSandboxPolicy | null;
  /** Idle, never-used task processes per deployment, started ahead of claims. */
  warmPool?: WarmPool;
  /** Processes that completed a run of a task with `processKeepAlive`, waiting for the next run of their version and environment. */
  keepAlive?: KeepAlivePool;
  /** Maps stack frames in the bundle to their sources (task processes run without `--enable-source-maps`); absent: left as printed. */
  stacks?: StackMapper;
  /** The run's process is gone (dumped): its slot is free although the checkpoint is still being stored. */
  onSlotFreed?: () => void;
  /** When this run's lease runs out by the runner's clock (heartbeats move it); reports retry until then. */
  leaseValidUntil: () => number;
  /** Aborted when the runner closes: reports stop retrying. */
  signal?: AbortSignal;
  log: Logger;
}

export type SessionOutcome = "finished" | "suspended" | "handed-over" | "stopped" | "lost";

export interface PendingWait {
  callId: number;
  waitpointId: string;
  spec: WaitSpec;
  /** The wait's key (every current SDK sends one): asking for it again is how a lost continue is found. */
  key?: string;
}

/** The in-process wait the task is blocked in, and a result that arrived while it could not be handed over. */
export interface WaitSlot {
  pending: PendingWait | null;
  /** A result held back during a checkpoint: handing it over mid-dump would freeze a run that already moved on. */
  held: WaitResult | null;
  /** Wakes whoever waits for `held` (see `nextHeldResult`). */
  arrived: (() => void) | null;
  /** A recheck of the pending wait is in flight. */
  rechecking: boolean;
}

/** A call of the task that came while its process was being checkpointed: answered once it runs again (here, or where it is restored). */
export interface HeldCall {
  callId: number;
  call: TaskCall;
}

/**
 * What every step of a session (start, calls, waits, suspend, restore, finish, drain) works on: the
 * claim, the process it holds, its state (states.ts) and the few pieces of data that outlive a step.
 */
export interface Session {
  readonly claim: ClaimedRun;
  readonly deps: RunSessionDeps;
  readonly runId: string;
  readonly leaseId: string;
  readonly log: Logger;
  readonly state: SessionStateMachine;
  readonly shipper: ReturnType<typeof createLogShipper>;
  /** Processes checkpointed away: what their dying wrappers print is not the run's output. */
  readonly silenced: WeakSet<TaskProcess>;
  readonly wait: WaitSlot;
  /**
   * The task's calls: how many are being answered (a checkpoint waits for them: a reply must reach the
   * process it was asked by), and those that came during a checkpoint, not yet asked of the server.
   */
  readonly calls: { inFlight: number; held: HeldCall[] };
  /** Runs each time the session (re)enters running: answers the held calls. */
  afterRunning: (() => void) | null;
  /** The run's checkpoint as the server has it (the one it resumed from, or its latest safety checkpoint): deleted once replaced or the run ends. */
  checkpointLocation: string | null;
  proc: TaskProcess | null;
  channel: TaskChannel | null;
  /** Stop this session's readers of the current process (before a kept-alive process goes back to the pool). */
  stopReading: Array<() => void>;
  /** Runs the current process has executed, this one included; whether it came from a checkpoint. */
  runsInProcess: number;
  restored: boolean;
  /** When this start's steps happened (runner clock, ms): logged at debug with the first `execute` (bench/trigger-latency traces it). */
  readonly startedAt: { claimReceived: number; processInHand: number; ready: number };
  /** The current suspend's or resume's steps (from the wait's call, or from the claim of a resume). */
  timeline: Timeline;
  /** Set while a `prepare-checkpoint` awaits the task's answer. */
  checkpointReady: (() => void) | null;
  /** Every call that reports something to the server goes through here: retried until the server has it or the lease is gone. */
  report<T>(what: string, call: () => Promise<T>): Promise<T>;
  /** A line in the run's own log, from the runner. */
  systemLog(level: "info" | "warn" | "error", message: string): void;
  /** `text` with the stack frames that point into the deployment's bundle mapped to their sources. */
  mapStacks(text: string): Promise<string>;
  /** Settles `done` (ending → ended). */
  settle(outcome: SessionOutcome): void;
  readonly done: Promise<SessionOutcome>;
}

export function createSession(claim: ClaimedRun, deps: RunSessionDeps): Session {
  const { server, log } = deps;
  const { runId, leaseId } = claim;
  function report<T>(what: string, call: () => Promise<T>): Promise<T> {
    return retryCall(call, {
      what,
      giveUpAt: deps.leaseValidUntil,
      signal: deps.signal,
      onRetry: (error, delayMs) => log.warn({ runId, err: error.message, retryInMs: delayMs }, `could not ${what}; retrying`),
    });
  }
  const entry = claim.deployment.manifest.entry;
  /** What a frame in the bundle holds, checked before anything else: most log lines have none. */
  const inBundle = `${entry.split("/").at(-1)}:`;
  /** Never throws: a stack that cannot be mapped (no map, an app dir gone) is kept as printed. */
  async function mapStacks(text: string): Promise<string> {
    if (!deps.stacks || !text.includes(inBundle)) return text;
    try {
      return await deps.stacks.map(text, { appDir: await deps.appDirFor(claim.deployment), entry });
    } catch {
      return text;
    }
  }
  const shipper = createLogShipper(
    (lines) => report("ship logs", () => server.appendLogs(runId, { leaseId, lines })),
    (error) => log.warn({ err: error.message }, "could not ship logs"),
    claim.env,
    mapStacks,
  );
  let resolveDone!: (outcome: SessionOutcome) => void;
  const done = new Promise<SessionOutcome>((resolve) => (resolveDone = resolve));
  const state = createSessionState((from, to) => {
    log.trace({ runId, from, to }, "session state");
    if (to === "running") queueMicrotask(() => session.afterRunning?.());
  });
  const session: Session = {
    claim,
    deps,
    runId,
    leaseId,
    log,
    state,
    shipper,
    silenced: new WeakSet(),
    wait: { pending: null, held: null, arrived: null, rechecking: false },
    calls: { inFlight: 0, held: [] },
    afterRunning: null,
    checkpointLocation: claim.resume?.checkpointLocation ?? null,
    proc: null,
    channel: null,
    stopReading: [],
    runsInProcess: 1,
    restored: false,
    startedAt: { claimReceived: Date.now(), processInHand: 0, ready: 0 },
    timeline: createTimeline(),
    checkpointReady: null,
    report,
    mapStacks,
    systemLog(level, message) {
      shipper.push({ ts: new Date().toISOString(), level, message: `[stasis] ${message}` });
    },
    settle(outcome) {
      state.tryMove("ending");
      if (state.tryMove("ended")) resolveDone(outcome);
    },
    done,
  };
  return session;
}

/** Waits for `promise`, but no longer than `ms`. */
export function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise.then(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

/** How long the end report (or a dump) waits for queued log lines to be stored before going ahead anyway. */
export const LOG_FLUSH_WAIT_MS = 3_000;
