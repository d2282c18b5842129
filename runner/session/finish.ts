import type { SerializedError } from "../../schemas/index.ts";
import { LOG_FLUSH_WAIT_MS, within, type Session, type SessionOutcome } from "./session.ts";

export type RunResult = { ok: true; output: unknown } | { ok: false; error: SerializedError; crashed?: boolean };

/** Reports how the run ended, then ends the process. Once: a second end (or a stop) is ignored. */
export async function finish(session: Session, result: RunResult): Promise<void> {
  if (!session.state.tryMove("ending")) return;
  const { deps, runId, leaseId, claim } = session;
  const released = result.ok ? deps.keepAlive?.releasing(claim, session.restored) : undefined;
  await within(session.shipper.close(), LOG_FLUSH_WAIT_MS);
  let reported = false;
  // A token the task returns (or puts in its error) is redacted like a printed one; the server does it again with the current tokens.
  const sent: RunResult = result.ok ? { ok: true, output: session.shipper.redactHandedTokens(result.output) } : { ...result, error: session.shipper.redactHandedTokens(await mappedError(session, result.error)) };
  try {
    await session.report("report the end of the run", () => deps.server.complete(runId, { leaseId, result: sent }));
    reported = true;
  } catch (error) {
    session.log.warn({ runId, err: (error as Error).message }, "could not report the end of the run");
  }
  // A completed run of a task with processKeepAlive: its process may wait for the next run of this version.
  const proc = session.proc;
  const kept = reported && result.ok && proc !== null && deps.keepAlive?.offer(claim, proc, { runs: session.runsInProcess, restored: session.restored, detach: () => session.stopReading.forEach((stop) => stop()) });
  released?.();
  if (!kept) await proc?.kill().catch(() => {});
  // Only once the server has the end: until then the run may be recovered from the checkpoint it resumed from.
  if (reported && session.checkpointLocation) await deps.checkpoints?.delete(session.checkpointLocation).catch(() => {});
  session.settle(reported ? "finished" : "lost");
}

/** Cancel, timeout, lost lease or drain: kill the process; the server already knows. */
export async function stop(session: Session, reason: string, outcome: SessionOutcome = "stopped"): Promise<void> {
  if (!session.state.tryMove("ending")) return;
  session.systemLog("warn", `run stopped on this runner: ${reason}`);
  // The process first: a run whose lease is gone may be running elsewhere already, and each moment it
  // goes on here is code run twice. Its logs so far are in the shipper.
  await session.proc?.kill().catch(() => {});
  await within(session.shipper.close(), LOG_FLUSH_WAIT_MS);
  session.settle(outcome);
}

/** The run left this runner another way (suspended, handed over, lost while storing): nothing to kill, nothing more to report. */
export function end(session: Session, outcome: SessionOutcome): void {
  if (!session.state.tryMove("ending")) return;
  session.settle(outcome);
}

/** The task's error with its stack's frames in the bundle mapped to their sources. */
async function mappedError(session: Session, error: SerializedError): Promise<SerializedError> {
  return error.stack ? { ...error, stack: await session.mapStacks(error.stack) } : error;
}
