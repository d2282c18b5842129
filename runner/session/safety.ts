import { rm } from "node:fs/promises";
import { join } from "node:path";
import { RESTORED_NOTICE_CALL_ID } from "../../schemas/index.ts";
import { LeaseGoneError } from "../retry-call.ts";
import { dumpProcess, prepareCheckpoint, storeDump, writeResumeNote } from "./checkpoint.ts";
import type { Session } from "./session.ts";

/** A task gets this long to close its connections before a safety checkpoint; a busy one is dumped anyway. */
const SAFETY_PREPARE_MS = 1_000;
/** When the run is not checkpointable right now (a call or wait under way, a suspend), try again this soon. */
const RETRY_MS = 500;

/**
 * Safety checkpoints (the task's `checkpoint.everyMs`): while the run runs here, dump it every
 * interval with the process left running, store the checkpoint in the background, and register it
 * with the server as the run's checkpoint — a runner that dies (kill -9, a lost host) then costs the
 * run only the work since the last one: the lease expiry resumes it from there on another runner.
 * Skipped while the run waits, a call of it is answered, or another checkpoint is under way. Returns
 * a function that stops the timer.
 */
export function startSafetyCheckpoints(session: Session): () => void {
  const { deps, claim } = session;
  const everyMs = claim.deployment.manifest.tasks.find((t) => t.id === claim.taskId)?.checkpoint?.everyMs;
  if (!everyMs || !deps.checkpoints || !deps.runtime.checkpoints.available) return () => {};
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = (ms: number) => {
    if (!stopped && !session.state.over) timer = setTimeout(() => void tick(), ms);
  };
  async function tick(): Promise<void> {
    if (stopped || session.state.over) return;
    if (!session.state.is("running") || session.wait.pending || session.calls.inFlight > 0) return schedule(RETRY_MS);
    await safetyCheckpoint(session).catch((error: Error) => session.log.warn({ runId: session.runId, err: error.message }, "safety checkpoint failed"));
    schedule(everyMs!);
  }
  schedule(everyMs);
  void session.done.then(() => clearTimeout(timer));
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** One safety checkpoint: the run pauses for the dump only; storing and registering it happen while it runs on. */
export async function safetyCheckpoint(session: Session): Promise<void> {
  const { deps, claim, runId, leaseId, log } = session;
  const dir = join(deps.scratchDir, "checkpoints", `${runId}-${claim.attempt}-safety-${Date.now()}`);
  try {
    const prepared = await prepareCheckpoint(session, SAFETY_PREPARE_MS);
    const dumped = await dumpProcess(session, dir, { leaveRunning: true });
    if (dumped instanceof Error) {
      session.state.tryMove("running");
      session.systemLog("warn", `safety checkpoint skipped: ${dumped.message.split("\n")[0]}`);
      return;
    }
    await writeResumeNote(session, dir, null, { leftRunning: true });
    if (!session.state.tryMove("running")) return;
    // The process here and any later restore of this checkpoint must not share randomness from now on.
    session.channel?.send({ type: "reply", callId: RESTORED_NOTICE_CALL_ID, ok: true });
    const storeStarted = Date.now();
    const { stored, key } = await storeDump(session, dir);
    let previous: string | null;
    try {
      ({ previous } = await session.report("record a safety checkpoint", () =>
        deps.server.safetyCheckpoint(runId, { leaseId, checkpoint: { location: stored.location, sizeBytes: stored.sizeBytes, sha256: stored.sha256, key: key.toString("base64") } }),
      ));
    } catch (error) {
      // Not recorded (the run ended or moved on meanwhile): nobody resumes from it. When we gave up by our own clock the server may have it: keep it then.
      if (!(error instanceof LeaseGoneError)) await deps.checkpoints!.delete(stored.location).catch(() => {});
      throw error;
    }
    const replaced = previous ?? session.checkpointLocation;
    session.checkpointLocation = stored.location;
    if (replaced && replaced !== stored.location) await deps.checkpoints!.delete(replaced).catch(() => {});
    const mb = (dumped.sizeBytes / (1 << 20)).toFixed(1);
    log.info({ runId, pauseMs: dumped.dumpMs, sizeBytes: dumped.sizeBytes, storedBytes: stored.sizeBytes, storeMs: Date.now() - storeStarted, prepared }, "safety checkpoint");
    session.systemLog("info", `safety checkpoint: the run paused ${dumped.dumpMs} ms for it (${mb} MB, stored in ${Date.now() - storeStarted} ms)`);
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
