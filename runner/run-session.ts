import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { WaitSpec, type ClaimedRun, type SerializedError, type TaskCall, type TaskToRunner, type WaitResult } from "../schemas/index.ts";
import { CHECKPOINT_KEY_BYTES, CheckpointIntegrityError, type CheckpointStore } from "./checkpoint-store/index.ts";
import type { WarmPool } from "./warm-pool.ts";
import { envDigest } from "./env-digest.ts";
import type { KeepAlivePool } from "./keep-alive.ts";
import { SANDBOX_ENV, taskSandboxFor, type TaskSandboxPolicy } from "./task-sandboxes.ts";
import { createLogShipper } from "./log-shipper.ts";
import { hardwareRandomFiles, hardwareRandomFlags } from "./hardware-random.ts";
import { readLines } from "./line-reader.ts";
import { isLeaseGone, LeaseGoneError, retryCall } from "./retry-call.ts";
import { ServerCallError, type ServerClient } from "./server-client.ts";
import { openTaskChannel, type TaskChannel } from "./task-channel.ts";
import type { TaskProcess, WorkloadRuntime } from "./workload/index.ts";

export interface RunSessionDeps {
  server: ServerClient;
  runtime: WorkloadRuntime;
  /** null: never suspend (runs stay alive while they wait). */
  checkpoints: CheckpointStore | null;
  /** Resolves a deployment to the directory holding its bundle (the image's app dir). */
  appDirFor(deployment: ClaimedRun["deployment"]): Promise<string>;
  /** The image's unpacked rootfs, for runtimes that run it (runc); tasks then get their `machine` limits too. */
  rootfsFor?(deployment: ClaimedRun["deployment"]): Promise<string>;
  workDir: string;
  suspendThresholdMs: number;
  /** Extra environment for task processes (e.g. the project's `.env`). */
  taskEnv: Record<string, string>;
  /** Run task processes as their environment's own unprivileged user, seeing only what they need (root only). */
  taskSandbox?: TaskSandboxPolicy | null;
  /** Idle, never-used task processes per deployment, started ahead of claims. */
  warmPool?: WarmPool;
  /** Processes that completed a run of a task with `processKeepAlive`, waiting for the next run of their version and environment. */
  keepAlive?: KeepAlivePool;
  /** The run's process is gone (dumped): its slot is free although the checkpoint is still being stored. */
  onSlotFreed?: () => void;
  /** When this run's lease runs out by the runner's clock (heartbeats move it); reports retry until then. */
  leaseValidUntil: () => number;
  /** Aborted when the runner closes: reports stop retrying. */
  signal?: AbortSignal;
  log: Logger;
}

export type SessionOutcome = "finished" | "suspended" | "stopped" | "lost";

interface PendingWait {
  callId: number;
  waitpointId: string;
  spec: WaitSpec;
  /** The wait's key (every current SDK sends one): asking for it again is how a lost continue is found. */
  key?: string;
}

const PREPARE_TIMEOUT_MS = 10_000;
/** How long the end report (or a dump) waits for queued log lines to be stored before going ahead anyway. */
const LOG_FLUSH_WAIT_MS = 3_000;

/**
 * One claimed run on this runner: starts or restores its process, answers its calls, ships its logs,
 * suspends it with a checkpoint on long waits, and reports how it ended. `done` settles when the run
 * no longer holds a slot here.
 */
export function startRunSession(claim: ClaimedRun, deps: RunSessionDeps) {
  const { server, runtime, log } = deps;
  const { runId, leaseId } = claim;
  /** Every call that reports something to the server goes through here: retried until the server has it or the lease is gone. */
  function report<T>(what: string, call: () => Promise<T>): Promise<T> {
    return retryCall(call, {
      what,
      giveUpAt: deps.leaseValidUntil,
      signal: deps.signal,
      onRetry: (error, delayMs) => log.warn({ runId, err: error.message, retryInMs: delayMs }, `could not ${what}; retrying`),
    });
  }
  const shipper = createLogShipper(
    (lines) => report("ship logs", () => server.appendLogs(runId, { leaseId, lines })),
    (error) => log.warn({ err: error.message }, "could not ship logs"),
    claim.env,
  );
  let proc: TaskProcess | null = null;
  let channel: TaskChannel | null = null;
  /** Stop this session's readers of the current process (before a kept-alive process goes back to the pool). */
  let stopReading: Array<() => void> = [];
  /** Runs the current process has executed, this one included; whether it came from a checkpoint. */
  let runsInProcess = 1;
  let restored = false;
  let pendingWait: PendingWait | null = null;
  let suspendPhase: "none" | "preparing" | "dumping" = "none";
  let heldResult: WaitResult | null = null;
  /** A recheck of the pending wait is in flight. */
  let rechecking = false;
  let resultArrived: (() => void) | null = null;
  /** Processes checkpointed away: what their dying wrappers print is not the run's output. */
  const silenced = new WeakSet<TaskProcess>();
  let ended = false;
  /** False while the run has no process here (dumped, not yet restored). */
  let holdsSlot = true;
  let checkpointReady: (() => void) | null = null;
  /** When this start's steps happened (runner clock, ms): logged at debug with the first `execute` (bench/trigger-latency traces it). */
  const startedAt = { claimReceived: Date.now(), processInHand: 0, ready: 0 };
  let resolveDone!: (outcome: SessionOutcome) => void;
  const done = new Promise<SessionOutcome>((resolve) => (resolveDone = resolve));

  function end(outcome: SessionOutcome): void {
    if (ended) return;
    ended = true;
    resolveDone(outcome);
  }

  function systemLog(level: "info" | "warn" | "error", message: string): void {
    shipper.push({ ts: new Date().toISOString(), level, message: `[stasis] ${message}` });
  }

  function attach(process: TaskProcess): void {
    proc = process;
    const ipc = openTaskChannel(process.ipc, onMessage, (problem) => log.warn({ runId }, problem));
    channel = ipc;
    stopReading = [
      readLines(process.stdout, (line) => silenced.has(process) || shipper.push({ ts: new Date().toISOString(), level: "info", message: line })),
      readLines(process.stderr, (line) => silenced.has(process) || shipper.push({ ts: new Date().toISOString(), level: "error", message: line })),
      () => ipc.detach(),
    ];
    void process.exited.then((exit) => {
      if (proc !== process || suspendPhase === "dumping" || silenced.has(process) || ended) return;
      if (exit.reason) return void finish({ ok: false, error: exit.reason, crashed: true });
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
      void finish({ ok: false, error: { name: "TaskProcessCrashed", message: `the task process ${how} before the run finished` }, crashed: true });
    });
  }

  function onMessage(message: TaskToRunner): void {
    switch (message.type) {
      case "ready":
        if (claim.resume) return;
        startedAt.ready = Date.now();
        channel?.send({ type: "execute", ctx: contextOf(claim), payload: claim.payload });
        log.debug({ runId, startedAt: { ...startedAt, executeSent: Date.now() } }, "run handed to its process");
        return;
      case "log":
        shipper.push({ ts: message.ts, level: message.level, message: message.message, data: message.data });
        return;
      case "call":
        void answerCall(message.callId, message.call);
        return;
      case "completed":
        void finish({ ok: true, output: message.output });
        return;
      case "failed":
        void finish({ ok: false, error: message.error });
        return;
      case "checkpoint-ready":
        checkpointReady?.();
        return;
      default:
        return;
    }
  }

  async function answerCall(callId: number, call: TaskCall): Promise<void> {
    try {
      switch (call.method) {
        case "wait":
          return await beginWait(callId, WaitSpec.parse(call.spec), call.key);
        case "createRequestToken":
          return reply(callId, await report("create a request token", () => server.createRequestToken(runId, { leaseId, timeoutMs: call.timeoutMs, key: call.key })));
        case "trigger": {
          // A retried trigger must not start the children twice: each item gets a key unique to this call.
          const items = (call.items as Array<{ options?: Record<string, unknown> }>).map((item, i) => ({
            ...item,
            options: { ...item.options, idempotencyKey: item.options?.idempotencyKey ?? `stasis-call:${leaseId}:${callId}:${i}` },
          }));
          return reply(callId, await report("trigger runs", () => server.trigger(runId, { leaseId, items: items as never, wait: call.wait })));
        }
        case "sendEvent": {
          // Events are idempotent by id: a retried send is not delivered twice.
          const id = call.id ?? `stasis-call:${leaseId}:${callId}`;
          return reply(callId, await report("send an event", () => server.sendEvent(runId, { leaseId, event: call.event, payload: call.payload, id })));
        }
      }
    } catch (thrown) {
      const error = thrown instanceof Error ? thrown : new Error(String(thrown));
      if (isLeaseGone(error)) return void stop("lease lost", "lost");
      channel?.send({ type: "reply", callId, ok: false, error: { name: error.name, message: error.message } });
    }
  }

  function reply(callId: number, result: unknown): void {
    channel?.send({ type: "reply", callId, ok: true, result });
  }

  async function beginWait(callId: number, spec: WaitSpec, key?: string): Promise<void> {
    const { waitpointId, result } = await report("create a wait", () => server.createWait(runId, { leaseId, spec, key }));
    if (result) return void channel?.send({ type: "wait-result", callId, result });
    pendingWait = { callId, waitpointId, spec, key };
    if (shouldSuspend(spec)) await suspend();
  }

  function shouldSuspend(spec: WaitSpec): boolean {
    if (!deps.checkpoints || !runtime.checkpoints.available) return false;
    if (spec.kind === "duration") return spec.ms >= deps.suspendThresholdMs;
    if (spec.kind === "until") return Date.parse(spec.date) - Date.now() >= deps.suspendThresholdMs;
    return true;
  }

  /**
   * The waitpoint this process is blocked on completed while the process is alive here. During a
   * suspend the result is held back: handing it over mid-dump would freeze a run that already moved on.
   */
  function continueWait(waitpointId: string, result: WaitResult): void {
    if (!pendingWait || pendingWait.waitpointId !== waitpointId) return;
    if (suspendPhase !== "none") {
      heldResult = result;
      resultArrived?.();
      return;
    }
    const { callId } = pendingWait;
    pendingWait = null;
    channel?.send({ type: "wait-result", callId, result });
  }

  /**
   * The result of `wait`, asked of the server again (the same keyed wait gives back its waitpoint and
   * result): the continue the server handed out in a poll answer may have been lost with that answer
   * (the server killed mid-reply), and the server moved the run to EXECUTING already. null: still
   * pending (its continue will come), or the wait has no key to ask by.
   */
  async function askWaitResult(wait: PendingWait): Promise<WaitResult | null> {
    if (!wait.key) return null;
    const { result } = await report("ask for a wait's result", () => server.createWait(runId, { leaseId, spec: wait.spec, key: wait.key }));
    return result;
  }

  /** After a poll whose answer may be lost: an in-process wait whose continue was in it gets its result anyway. */
  async function recheckWait(): Promise<void> {
    const wait = pendingWait;
    // One ask at a time: polls fail again and again while the server is down, and the ask retries until it is back.
    if (!wait || suspendPhase !== "none" || ended || rechecking) return;
    rechecking = true;
    try {
      const result = await askWaitResult(wait).catch(() => null);
      if (result) continueWait(wait.waitpointId, result);
    } finally {
      rechecking = false;
    }
  }

  function nextHeldResult(): Promise<WaitResult> {
    if (heldResult) return Promise.resolve(heldResult);
    return new Promise((resolve) => (resultArrived = () => resolve(heldResult!)));
  }

  async function suspend(): Promise<void> {
    const wait = pendingWait!;
    const started = Date.now();
    suspendPhase = "preparing";
    const ready = new Promise<boolean>((resolve) => {
      checkpointReady = () => resolve(true);
      setTimeout(() => resolve(false), PREPARE_TIMEOUT_MS).unref();
    });
    channel?.send({ type: "prepare-checkpoint" });
    const prepared = await ready;
    if (!prepared || heldResult) {
      // Not ready in time, or the wait is already over: no checkpoint, the process goes on here.
      if (!prepared) systemLog("warn", "the task did not get ready for a checkpoint in time; it stays alive while it waits");
      suspendPhase = "none";
      if (heldResult) channel?.send({ type: "wait-result", callId: wait.callId, result: takeHeld() });
      return;
    }
    const dir = join(deps.workDir, "checkpoints", `${runId}-${claim.attempt}-${Date.now()}`);
    let keptLocally = false;
    suspendPhase = "dumping";
    try {
      // The dump is the process's memory in clear until it is sealed into the store: root-only, removed as soon as it is stored.
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await within(shipper.flush(), LOG_FLUSH_WAIT_MS);
      const frozen = proc!;
      // Silenced from the start: the wrappers CRIU kills at the end of the dump may print as they die.
      silenced.add(frozen);
      const dumped = await runtime.checkpoint(frozen, join(dir, "images")).catch((error: unknown) => {
        silenced.delete(frozen);
        return error instanceof Error ? error : new Error(String(error));
      });
      if (dumped instanceof Error) {
        // CRIU leaves a process it could not dump running: the run waits in-process instead.
        if (!(await isRunning(frozen))) throw dumped;
        systemLog("warn", `could not checkpoint the run (${dumped.message.split("\n")[0]}); it stays alive while it waits`);
        suspendPhase = "none";
        if (heldResult) channel?.send({ type: "wait-result", callId: wait.callId, result: takeHeld() });
        return;
      }
      const { dumpMs, sizeBytes } = dumped;
      await writeFile(join(dir, "resume.json"), JSON.stringify({ callId: wait.callId }));
      if (heldResult) return await restoreInto(dir, wait.callId, takeHeld());
      holdsSlot = false;
      deps.onSlotFreed?.();
      const stopStoring = new AbortController();
      // A fresh key per checkpoint: the server keeps it wrapped by the project's data key and gives it back only to the runner that resumes this run.
      const seal = { key: randomBytes(CHECKPOINT_KEY_BYTES) };
      const storing = deps.checkpoints!.put(`${runId}/${claim.attempt}-${Date.now()}`, dir, seal, stopStoring.signal);
      const first = await Promise.race([storing.then((done) => ({ done }), (error: unknown) => ({ error })), nextHeldResult().then(() => null)]);
      if (first === null) {
        // The wait ended while the checkpoint was still being stored (seconds, under load): the server moved the run
        // on already. Stop storing (its CPU is the restore's) and restore from the dump on disk now.
        stopStoring.abort();
        keptLocally = true; // removed below, once both the restore and the store are done with it
        const restoring = restoreInto(dir, wait.callId, takeHeld());
        void Promise.allSettled([storing.then((done) => deps.checkpoints!.delete(done.location)), restoring]).then(() => rm(dir, { recursive: true, force: true }).catch(() => {}));
        return await restoring;
      }
      if ("error" in first) return await keepWaitingHere(dir, wait.callId, first.error);
      const stored = first.done;
      log.info({ runId, dumpMs, sizeBytes, storedBytes: stored.sizeBytes, suspendMs: Date.now() - started }, "run suspended");
      try {
        await report("report the suspend", () => server.suspend(runId, { leaseId, waitpointId: wait.waitpointId, checkpoint: { location: stored.location, sizeBytes: stored.sizeBytes, sha256: stored.sha256, key: seal.key.toString("base64") } }));
        // The run's checkpoint is now this one: the one it was restored from is of no use any more.
        if (claim.resume) await deps.checkpoints!.delete(claim.resume.checkpointLocation).catch(() => {});
        end("suspended");
      } catch (error) {
        if (error instanceof Error && isLeaseGone(error)) {
          // The server said no to this lease, so it never recorded this checkpoint: nobody will resume from it. When
          // we gave up by our own clock the server may have it (an answer lost on the way): keep it then.
          if (!(error instanceof LeaseGoneError)) await deps.checkpoints!.delete(stored.location).catch(() => {});
          log.warn({ runId, err: error.message }, "could not report the suspend; the lease is gone");
          return end("lost");
        }
        // The waitpoint completed while we were dumping and the server moved the run on: resume here, with the
        // result its continue carries — or, when that poll answer was lost (found by bench/chaos: two runs stuck
        // EXECUTING for good after a server kill), with the result asked of the server again.
        if (!(error instanceof ServerCallError && error.status === 409)) throw error;
        await deps.checkpoints!.delete(stored.location).catch(() => {});
        const asked = heldResult ? null : await askWaitResult(wait).catch(() => null);
        let result: WaitResult;
        if (asked && !heldResult) {
          result = asked;
          resultArrived = null;
          pendingWait = null;
        } else result = await nextHeldResult().then(() => takeHeld());
        await restoreInto(dir, wait.callId, result);
      }
    } catch (thrown) {
      const error = thrown instanceof Error ? thrown : new Error(String(thrown));
      log.error({ runId, err: error.message }, "suspend failed");
      if (proc) await proc.kill().catch(() => {});
      await finish({ ok: false, error: { name: "CheckpointFailed", message: `could not suspend the run: ${error.message}` }, crashed: true });
    } finally {
      suspendPhase = "none";
      if (!keptLocally) await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  /**
   * The dump is whole on this runner's disk but the store refused it (the checkpoint disk is full, the
   * registry is down): restore the process from the dump here and let it wait in-process, as when
   * CRIU cannot dump it. Failing the attempt instead would run the code since the last checkpoint
   * again (found by bench/chaos: repeats after a completed wait in the full-disk windows).
   */
  async function keepWaitingHere(dir: string, callId: number, storeError: unknown): Promise<void> {
    const message = (storeError instanceof Error ? storeError.message : String(storeError)).split("\n")[0];
    log.warn({ runId, err: message }, "could not store the checkpoint; restoring the run here to wait in-process");
    const started = Date.now();
    const back = await runtime.restore(join(dir, "images"), { cwd: await deps.appDirFor(claim.deployment), ...(await placement()) });
    restored = true;
    holdsSlot = true;
    attach(back);
    systemLog("warn", `could not store the checkpoint (${message}); the run stays alive here while it waits`);
    log.info({ runId, restoreMs: Date.now() - started }, "run restored from its unstored dump");
    suspendPhase = "none";
    resultArrived = null;
    if (heldResult) channel?.send({ type: "wait-result", callId, result: takeHeld() });
  }

  /** The process has not exited (a check that does not wait). */
  async function isRunning(process: TaskProcess): Promise<boolean> {
    return Promise.race([process.exited.then(() => false), new Promise<boolean>((resolve) => setImmediate(() => resolve(true)))]);
  }

  function takeHeld(): WaitResult {
    const result = heldResult!;
    heldResult = null;
    resultArrived = null;
    pendingWait = null;
    return result;
  }

  async function restoreInto(dir: string, callId: number, result: WaitResult, fetched?: { fetchMs: number }): Promise<void> {
    const started = Date.now();
    const back = await runtime.restore(join(dir, "images"), { cwd: await deps.appDirFor(claim.deployment), ...(await placement()) });
    restored = true;
    holdsSlot = true;
    attach(back);
    channel!.send({ type: "wait-result", callId, result });
    log.info({ runId, restoreMs: Date.now() - started, ...fetched }, "run restored");
  }

  async function finish(result: { ok: true; output: unknown } | { ok: false; error: SerializedError; crashed?: boolean }): Promise<void> {
    if (ended) return;
    ended = true;
    const released = result.ok ? deps.keepAlive?.releasing(claim, restored) : undefined;
    await within(shipper.close(), LOG_FLUSH_WAIT_MS);
    let reported = false;
    try {
      await report("report the end of the run", () => server.complete(runId, { leaseId, result }));
      reported = true;
    } catch (error) {
      log.warn({ runId, err: (error as Error).message }, "could not report the end of the run");
    }
    // A completed run of a task with processKeepAlive: its process may wait for the next run of this version.
    const kept = reported && result.ok && proc !== null && deps.keepAlive?.offer(claim, proc, { runs: runsInProcess, restored, detach: () => stopReading.forEach((stop) => stop()) });
    released?.();
    if (!kept) await proc?.kill().catch(() => {});
    // Only once the server has the end: until then the run may be recovered from the checkpoint it resumed from.
    if (reported && claim.resume) await deps.checkpoints?.delete(claim.resume.checkpointLocation).catch(() => {});
    resolveDone(reported ? "finished" : "lost");
  }

  /** Cancel, timeout, lost lease or drain: kill the process; the server already knows. */
  async function stop(reason: string, outcome: SessionOutcome = "stopped"): Promise<void> {
    if (ended) return;
    ended = true;
    systemLog("warn", `run stopped on this runner: ${reason}`);
    // The process first: a run whose lease is gone may be running elsewhere already, and each moment it
    // goes on here is code run twice. Its logs so far are in the shipper.
    await proc?.kill().catch(() => {});
    await within(shipper.close(), LOG_FLUSH_WAIT_MS);
    resolveDone(outcome);
  }

  /** Where the image's rootfs is and the task's machine, when the runtime runs the image itself. */
  async function placement(): Promise<{ rootfs?: string; machine?: { cpu: number; memory: number } }> {
    if (!deps.rootfsFor) return {};
    const machine = claim.deployment.manifest.tasks.find((t) => t.id === claim.taskId)?.machine;
    return { rootfs: await deps.rootfsFor(claim.deployment), machine: machine && { cpu: machine.cpu, memory: machine.memory } };
  }

  async function begin(): Promise<void> {
    const appDir = await deps.appDirFor(claim.deployment);
    if (claim.resume) {
      const { checkpointLocation, sha256, key } = claim.resume;
      // The restore dir holds the process's memory in clear for as long as the restore takes: 0700, removed right after.
      const dir = join(deps.workDir, "restores", `${runId}-${Date.now()}`);
      const fetchStarted = Date.now();
      try {
        if (!sha256 || !key) throw new CheckpointIntegrityError(`checkpoint ${checkpointLocation} has no sha256 recorded by the server: refusing to restore an unverifiable checkpoint`);
        await mkdir(dir, { recursive: true, mode: 0o700 });
        await deps.checkpoints!.get(checkpointLocation, dir, { key: Buffer.from(key, "base64"), sha256 });
        const { callId } = JSON.parse(await readFile(join(dir, "resume.json"), "utf8")) as { callId: number };
        await restoreInto(dir, callId, claim.resume.result, { fetchMs: Date.now() - fetchStarted });
      } finally {
        await rm(dir, { recursive: true, force: true }).catch(() => {});
      }
      return;
    }
    const entry = join(appDir, claim.deployment.manifest.entry);
    const where = await placement();
    const sandbox = deps.taskSandbox ? taskSandboxFor(deps.taskSandbox, claim, appDir) : undefined;
    // The environment's variables win over the runner's --env-file; the runner's own few (PATH, STASIS_WORKER_MODE…) win over both.
    const env = { ...(sandbox ? SANDBOX_ENV : {}), ...deps.taskEnv, ...claim.env, ...baseTaskEnv() };
    const reused = where.rootfs ? null : await deps.keepAlive?.take(claim);
    if (reused) {
      runsInProcess = reused.runs + 1;
      startedAt.processInHand = Date.now();
      attach(reused.proc);
      return onMessage({ type: "ready" });
    }
    const start = () => runtime.start({ command: process.execPath, args: [...taskNodeFlags(), entry], cwd: appDir, env, files: hardwareRandomFiles(), sandbox, ...where });
    // A spare process of this deployment has run nothing yet; runtimes that apply per-task limits start their own. Spares are kept per set of variables.
    const taken = deps.warmPool && !where.rootfs ? await deps.warmPool.take(`${claim.deployment.id}:${envDigest(claim.env)}`, start) : { proc: await start(), ready: false };
    startedAt.processInHand = Date.now();
    attach(taken.proc);
    // A spare's `ready` was read by the pool long ago: the run goes to it now.
    if (taken.ready) onMessage({ type: "ready" });
  }

  void begin().catch((error: Error) => {
    log.error({ runId, err: error.message }, "could not start the run");
    // A refused checkpoint fails this attempt under its own name; the run's next attempt starts afresh.
    const name = error instanceof CheckpointIntegrityError ? error.name : "RunStartFailed";
    if (name === "CheckpointIntegrityError") systemLog("error", `${name}: ${error.message}`);
    void finish({ ok: false, error: { name, message: error.message }, crashed: true });
  });

  return {
    runId,
    leaseId,
    done,
    continueWait,
    recheckWait,
    stop,
    get holdsSlot() {
      return holdsSlot && !ended;
    },
  };
}

export type RunSession = ReturnType<typeof startRunSession>;

/** Waits for `promise`, but no longer than `ms`. */
function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise.then(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]).finally(() => clearTimeout(timer));
}

function contextOf(claim: ClaimedRun) {
  return {
    runId: claim.runId,
    taskId: claim.taskId,
    attempt: claim.attempt,
    environment: claim.environment,
    project: claim.project,
    version: claim.deployment.version,
    tags: claim.tags,
  };
}

let nodeFlags: string[] | undefined;

/**
 * V8 protects wasm code with memory protection keys (PKU) when the CPU has them; CRIU does not bring
 * the process's pkey allocation back, so wasm code compiled after a restore (undici's llhttp behind
 * every `fetch` tiers up) aborts the task. Turned off where this Node knows the flag.
 */
function taskNodeFlags(): string[] {
  if (!nodeFlags) {
    const probe = spawnSync(process.execPath, ["--no-wasm-memory-protection-keys", "-e", "0"], { stdio: "ignore", timeout: 10_000 });
    nodeFlags = ["--enable-source-maps", ...(probe.status === 0 ? ["--no-wasm-memory-protection-keys"] : []), ...hardwareRandomFlags()];
  }
  return nodeFlags;
}


function baseTaskEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", STASIS_WORKER_MODE: "run", UV_USE_IO_URING: "0", NODE_ENV: process.env.NODE_ENV ?? "production" };
  if (process.env.TZ) env.TZ = process.env.TZ;
  return env;
}
