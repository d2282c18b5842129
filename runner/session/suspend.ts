import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { WaitResult } from "../../schemas/index.ts";
import { CHECKPOINT_KEY_BYTES } from "../checkpoint-store/index.ts";
import { isLeaseGone, LeaseGoneError } from "../retry-call.ts";
import { ServerCallError } from "../server-client.ts";
import { WorkloadError } from "../workload/index.ts";
import { attach } from "./attach.ts";
import { dumpProcess, prepareCheckpoint, writeResumeNote } from "./checkpoint.ts";
import { end, finish } from "./finish.ts";
import type { StoppedProcess } from "../stopped-processes.ts";
import { continueStopped, restoreInto, restoreOptions, thawInto } from "./restore.ts";
import { LOG_FLUSH_WAIT_MS, within, type Session } from "./session.ts";
import { askWaitResult, nextHeldResult, releaseHeld, takeHeld } from "./waits.ts";

/**
 * The task waits long: freeze it with a checkpoint, store it, report `suspended`, and free the slot.
 * When the wait ends meanwhile, or the store refuses the checkpoint, the process is restored here.
 *
 * With `verdict`, the dump begins before the server has answered the wait's call (calls.ts): the
 * dumped process stays frozen until the verdict; false (the wait has its result already, or the call
 * failed) and it goes on where it was, this returns with the session running, and the caller hands
 * over the answer. The pending wait is the session's before the verdict says go.
 */
export async function suspend(session: Session, verdict?: Promise<boolean>): Promise<void> {
  const { deps, claim, runId, leaseId, log } = session;
  const started = Date.now();
  let declined = false;
  // A verdict that says no before the task is ready ends the wait for it (a busy task may take up to PREPARE_TIMEOUT_MS).
  const prepared = await prepareCheckpoint(session, undefined, verdict?.then((go) => (go ? new Promise(() => {}) : (declined = true))));
  session.timeline.mark("prepared");
  if (!prepared || session.wait.held) {
    // Not ready in time, or the wait is already over: no checkpoint, the process goes on here.
    if (!prepared && !declined) session.systemLog("warn", "the task did not get ready for a checkpoint in time; it stays alive while it waits");
    if (session.state.tryMove("running")) releaseHeld(session);
    return;
  }
  const dir = join(deps.scratchDir, "checkpoints", `${runId}-${claim.attempt}-${Date.now()}`);
  let keptLocally = false;
  // With a budget for them, the dumped process stays, stopped: a resume here continues it instead of restoring the dump.
  const stopAfter = Boolean(deps.stoppedProcesses && deps.runtime.checkpoints.stops);
  let keptStopped: string | null = null;
  try {
    const dumped = await dumpProcess(session, dir, { verdict, stopAfter });
    if (dumped instanceof Error) {
      // CRIU leaves a process it could not dump running: the run waits in-process instead. A dump its verdict
      // declined is no failure: the process goes on with the wait's answer.
      if (!isDeclined(dumped)) session.systemLog("warn", `could not checkpoint the run (${dumped.message.split("\n")[0]}); it stays alive while it waits`);
      if (session.state.tryMove("running")) releaseHeld(session);
      return;
    }
    const wait = session.wait.pending!;
    const { dumpMs, sizeBytes } = dumped;
    session.timeline.mark("dumped");
    const stopped: StoppedProcess | null = stopAfter ? { proc: session.proc!, callId: wait.callId, calls: session.calls.held } : null;
    await writeResumeNote(session, dir, wait.callId, { leftRunning: stopped !== null });
    session.timeline.mark("noteWritten");
    /** The wait ended after all: the process goes on here, from where the dump left it. */
    const goOnHere = (result: WaitResult) => (stopped ? thawInto(session, stopped, result) : restoreInto(session, dir, wait.callId, result));
    if (session.wait.held) return await goOnHere(takeHeld(session));
    session.state.move("storing");
    deps.onSlotFreed?.();
    session.timeline.mark("slotFreed");
    // Before the store reads the images (and a resume here restores them): the restore's part it need not do then.
    deps.runtime.settleDump?.(join(dir, "images"));
    session.timeline.mark("settled");
    const stopStoring = new AbortController();
    // A fresh key per checkpoint: the server keeps it wrapped by the project's data key and gives it back only to the runner that resumes this run.
    const seal = { key: randomBytes(CHECKPOINT_KEY_BYTES) };
    const storing = deps.checkpoints!.put(`${runId}/${claim.attempt}-${Date.now()}`, dir, seal, stopStoring.signal);
    const first = await Promise.race([storing.then((done) => ({ done }), (error: unknown) => ({ error })), nextHeldResult(session).then(() => null)]);
    if (first === null) {
      // The wait ended while the checkpoint was still being stored (seconds, under load): the server moved the run
      // on already. Stop storing (its CPU is the restore's) and restore from the dump on disk now.
      stopStoring.abort();
      keptLocally = true; // removed below, once both the restore and the store are done with it
      const restoring = goOnHere(takeHeld(session));
      void Promise.allSettled([storing.then((done) => deps.checkpoints!.delete(done.location)), restoring]).then(() => rm(dir, { recursive: true, force: true }).catch(() => {}));
      return await restoring;
    }
    if ("error" in first) return await keepWaitingHere(session, dir, first.error, stopped);
    const stored = first.done;
    session.timeline.mark("stored");
    log.info({ runId, dumpMs, sizeBytes, storedBytes: stored.sizeBytes, suspendMs: Date.now() - started, timeline: session.timeline.marks, dumpSteps: dumped.steps }, "run suspended");
    // Kept here before the report: a resume claimed here the moment the server has it finds it already.
    const local = deps.localCheckpoints;
    const keptDump = (await local?.keep(stored.location, dir, sizeBytes).catch(() => false)) ?? false;
    if (stopped) {
      // The process is the pool's now: this session stops reading it, and its end (killed there) is not this run's end.
      session.stopReading.forEach((stopReading) => stopReading());
      session.proc = null;
      if (deps.stoppedProcesses!.keep(stored.location, { ...stopped, calls: [...stopped.calls] }, sizeBytes)) keptStopped = stored.location;
      else await stopped.proc.kill().catch(() => {});
    }
    const keptHere = keptDump || keptStopped !== null;
    // Its lines up to the freeze, before the server hears of the suspend: a resume elsewhere logs after them.
    await within(session.shipper.flush(), LOG_FLUSH_WAIT_MS);
    try {
      await session.report("report the suspend", () => deps.server.suspend(runId, { leaseId, waitpointId: wait.waitpointId, checkpoint: { location: stored.location, sizeBytes: stored.sizeBytes, sha256: stored.sha256, key: seal.key.toString("base64") }, keptLocally: keptHere }));
      // The run's checkpoint is now this one: the one it was restored from is of no use any more.
      if (session.checkpointLocation) await deps.checkpoints!.delete(session.checkpointLocation).catch(() => {});
      end(session, "suspended");
    } catch (error) {
      if (error instanceof Error && isLeaseGone(error)) {
        // The server said no to this lease, so it never recorded this checkpoint: nobody will resume from it. When
        // we gave up by our own clock the server may have it (an answer lost on the way): keep it then.
        if (!(error instanceof LeaseGoneError)) await deps.checkpoints!.delete(stored.location).catch(() => {});
        if (keptStopped) await deps.stoppedProcesses!.drop(keptStopped);
        log.warn({ runId, err: error.message }, "could not report the suspend; the lease is gone");
        return end(session, "lost");
      }
      // The waitpoint completed while we were dumping and the server moved the run on: resume here, with the
      // result its continue carries — or, when that poll answer was lost (found by bench/chaos: two runs stuck
      // EXECUTING for good after a server kill), with the result asked of the server again.
      if (!(error instanceof ServerCallError && error.status === 409)) throw error;
      // The server did not record this checkpoint: the process or the dump kept for a resume here is the session's again.
      const back = keptStopped ? deps.stoppedProcesses!.take(keptStopped) : null;
      keptStopped = null;
      if (!back && keptDump && !(await local!.take(stored.location, dir))) throw new Error("the dump kept for a resume here is gone", { cause: error });
      if (!back && !keptDump && stopped) throw new Error("the process kept for a resume here is gone", { cause: error });
      await deps.checkpoints!.delete(stored.location).catch(() => {});
      const asked = session.wait.held ? null : await askWaitResult(session, wait).catch(() => null);
      let result: WaitResult;
      if (asked && !session.wait.held) {
        result = asked;
        session.wait.arrived = null;
        session.wait.pending = null;
      } else result = await nextHeldResult(session).then(() => takeHeld(session));
      await (back ? thawInto(session, back, result) : restoreInto(session, dir, wait.callId, result));
    }
  } catch (thrown) {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    log.error({ runId, err: error.message }, "suspend failed");
    if (session.proc) await session.proc.kill().catch(() => {});
    if (keptStopped) await deps.stoppedProcesses!.drop(keptStopped);
    await finish(session, { ok: false, error: { name: "CheckpointFailed", message: `could not suspend the run: ${error.message}` }, crashed: true });
  } finally {
    if (!keptLocally) await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * The dump is whole on this runner's disk but the store refused it (the checkpoint disk is full, the
 * registry is down): restore the process from the dump here and let it wait in-process, as when
 * CRIU cannot dump it. Failing the attempt instead would run the code since the last checkpoint
 * again (found by bench/chaos: repeats after a completed wait in the full-disk windows).
 */
async function keepWaitingHere(session: Session, dir: string, storeError: unknown, stopped: StoppedProcess | null): Promise<void> {
  const { deps, claim, runId, log } = session;
  const message = (storeError instanceof Error ? storeError.message : String(storeError)).split("\n")[0];
  log.warn({ runId, err: message }, "could not store the checkpoint; restoring the run here to wait in-process");
  const started = Date.now();
  session.state.move("restoring");
  if (stopped) {
    // Its own process, stopped by the dump: continued, not restored.
    if (!(await continueStopped(session, stopped.proc))) return;
  } else {
    const restored = await deps.runtime.restore(join(dir, "images"), await restoreOptions(session));
    session.restored = true;
    attach(session, restored);
    if (!session.state.tryMove("running")) return void (await restored.kill().catch(() => {}));
  }
  session.systemLog("warn", `could not store the checkpoint (${message}); the run stays alive here while it waits`);
  log.info({ runId, restoreMs: Date.now() - started }, "run restored from its unstored dump");
  session.wait.arrived = null;
  releaseHeld(session);
}

function isDeclined(error: Error): boolean {
  return error instanceof WorkloadError && error.code === "DUMP_DECLINED";
}
