import { rm } from "node:fs/promises";
import { join } from "node:path";
import { isLeaseGone, LeaseGoneError } from "../retry-call.ts";
import { callsSettled, dumpProcess, prepareCheckpoint, storeDump, writeResumeNote } from "./checkpoint.ts";
import { end } from "./finish.ts";
import { LOG_FLUSH_WAIT_MS, within, type Session } from "./session.ts";
import { suspend } from "./suspend.ts";

/** A draining runner gives a task this long to close its connections; a busy (CPU-bound) task that cannot answer is dumped anyway. */
const DRAIN_PREPARE_MS = 2_000;

/**
 * The runner drains: move this run off it without losing work. A run blocked in an in-process wait
 * is suspended as for a long wait; a running one is dumped and handed to the server as resumable
 * (EXECUTING → QUEUED with its checkpoint, same attempt), and another runner restores it where it
 * was. A checkpoint under way (a suspend) is waited for. New steps start only before `deadline`.
 * True when the run left this runner that way (or ended); false when it is still here (the runner
 * then gives it back as before: from its last checkpoint, or from the start).
 */
export async function handOver(session: Session, deadline: number): Promise<boolean> {
  const { state } = session;
  while (!state.over) {
    if (!state.is("running")) {
      // Starting, restoring, or a checkpoint under way: wait for it to settle.
      if (Date.now() >= deadline && !state.is("storing", "dumping")) return false;
      await Promise.race([session.done, new Promise((resolve) => setTimeout(resolve, 50))]);
      continue;
    }
    if (Date.now() >= deadline) return false;
    if (!(await callsSettled(session, deadline))) return false;
    if (!state.is("running")) continue;
    if (session.wait.pending) await suspend(session);
    else return (await handOverRunning(session)) || state.over;
  }
  return true;
}

/**
 * Dumps the running process, stores the checkpoint, and hands the run over. False: the dump failed
 * and the process runs on here, or the checkpoint did not reach the store or the server.
 */
async function handOverRunning(session: Session): Promise<boolean> {
  const { deps, claim, runId, leaseId, log } = session;
  const started = Date.now();
  session.systemLog("info", "runner draining: checkpointing the running run to resume it on another runner");
  const prepared = await prepareCheckpoint(session, DRAIN_PREPARE_MS);
  if (!prepared) log.info({ runId }, "the task did not answer prepare-checkpoint in time (busy?); dumping it anyway");
  const dir = join(deps.scratchDir, "checkpoints", `${runId}-${claim.attempt}-${Date.now()}`);
  let stored: { location: string } | null = null;
  try {
    const dumped = await dumpProcess(session, dir);
    if (dumped instanceof Error) {
      session.systemLog("warn", `could not checkpoint the run for the drain (${dumped.message.split("\n")[0]}); it is given back instead`);
      session.state.tryMove("running");
      return false;
    }
    await writeResumeNote(session, dir, null);
    // What the task logged up to its freeze (the last lines read just above) is stored before the run moves on:
    // this runner may exit as soon as the drain is over, before the shipper's next batch (a CI run lost a line so).
    await within(session.shipper.flush(), LOG_FLUSH_WAIT_MS);
    session.state.move("storing");
    const { stored: done, key } = await storeDump(session, dir);
    stored = done;
    await session.report("hand the run over", () => deps.server.handOver(runId, { leaseId, checkpoint: { location: done.location, sizeBytes: done.sizeBytes, sha256: done.sha256, key: key.toString("base64") } }));
    // The run's checkpoint is now this one: the one before is of no use any more.
    if (session.checkpointLocation) await deps.checkpoints!.delete(session.checkpointLocation).catch(() => {});
    log.info({ runId, dumpMs: dumped.dumpMs, sizeBytes: dumped.sizeBytes, storedBytes: done.sizeBytes, handOverMs: Date.now() - started, prepared }, "run handed over");
    end(session, "handed-over");
    return true;
  } catch (thrown) {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    // The process is gone with the dump, but its checkpoint did not reach the store or the server: the runner gives
    // the run back (from its last checkpoint). A checkpoint the server surely does not have is deleted.
    log.error({ runId, err: error.message }, "could not hand the run over");
    if (stored && !(error instanceof LeaseGoneError)) await deps.checkpoints!.delete(stored.location).catch(() => {});
    if (isLeaseGone(error)) end(session, "lost");
    return false;
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
