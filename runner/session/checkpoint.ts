import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { CheckpointResult, TaskProcess } from "../workload/index.ts";
import { LOG_FLUSH_WAIT_MS, within, type Session } from "./session.ts";

const PREPARE_TIMEOUT_MS = 10_000;

/**
 * Asks the task to close its own connections (running → preparing); true once it answers
 * `checkpoint-ready`, false after `timeoutMs`. The caller moves on to dumping, or back to running.
 */
export async function prepareCheckpoint(session: Session, timeoutMs = PREPARE_TIMEOUT_MS): Promise<boolean> {
  session.state.move("preparing");
  const ready = new Promise<boolean>((resolve) => {
    session.checkpointReady = () => resolve(true);
    setTimeout(() => resolve(false), timeoutMs).unref();
  });
  session.channel?.send({ type: "prepare-checkpoint" });
  const prepared = await ready;
  session.checkpointReady = null;
  return prepared;
}

/**
 * Dumps the session's process into `<dir>/images` (preparing → dumping). Returns the dump, or the
 * error when CRIU could not dump a process that is still running (the session is still dumping then;
 * the caller decides where it goes). A process that died in a failed dump throws.
 */
export async function dumpProcess(session: Session, dir: string, options: { leaveRunning?: boolean } = {}): Promise<CheckpointResult | Error> {
  session.state.move("dumping");
  // The dump is the process's memory in clear until it is sealed into the store: root-only, removed as soon as it is stored.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await within(session.shipper.flush(), LOG_FLUSH_WAIT_MS);
  const frozen = session.proc!;
  // Silenced from the start: the wrappers CRIU kills at the end of the dump may print as they die.
  if (!options.leaveRunning) session.silenced.add(frozen);
  const dumped = await session.deps.runtime.checkpoint(frozen, join(dir, "images"), options).catch((error: unknown) => {
    session.silenced.delete(frozen);
    return error instanceof Error ? error : new Error(String(error));
  });
  if (dumped instanceof Error && !(await isRunning(frozen))) throw dumped;
  return dumped;
}

/** The process has not exited (a check that does not wait). */
export async function isRunning(process: TaskProcess): Promise<boolean> {
  return Promise.race([process.exited.then(() => false), new Promise<boolean>((resolve) => setImmediate(() => resolve(true)))]);
}
