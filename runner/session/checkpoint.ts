import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CHECKPOINT_KEY_BYTES } from "../checkpoint-store/index.ts";
import type { CheckpointOptions, CheckpointResult, TaskProcess } from "../workload/index.ts";
import { LOG_FLUSH_WAIT_MS, within, type HeldCall, type Session } from "./session.ts";

/**
 * What a checkpoint carries besides CRIU's images (`resume.json`): the call of the wait the process
 * was frozen in (null: frozen while running), and the calls it made that were not answered yet —
 * the runner that restores it asks the server those, so each is done once.
 */
export interface ResumeNote {
  callId: number | null;
  calls?: HeldCall[];
}

const PREPARE_TIMEOUT_MS = 10_000;

/**
 * Asks the task to close its own connections (running → preparing); true once it answers
 * `checkpoint-ready`, false after `timeoutMs` or once `unneeded` settles (no dump is coming after
 * all). The caller moves on to dumping, or back to running.
 */
export async function prepareCheckpoint(session: Session, timeoutMs = PREPARE_TIMEOUT_MS, unneeded?: Promise<unknown>): Promise<boolean> {
  session.state.move("preparing");
  const ready = new Promise<boolean>((resolve) => {
    session.checkpointReady = () => resolve(true);
    setTimeout(() => resolve(false), timeoutMs).unref();
    void unneeded?.then(() => resolve(false));
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
export async function dumpProcess(session: Session, dir: string, options: CheckpointOptions = {}): Promise<CheckpointResult | Error> {
  session.state.move("dumping");
  // The dump is the process's memory in clear until it is sealed into the store: root-only, removed as soon as it is stored.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await within(session.shipper.flush(), LOG_FLUSH_WAIT_MS);
  session.timeline.mark("logsFlushed");
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

/**
 * Writes `resume.json` next to the images. Lines the task wrote to fd 3 before it was frozen may still
 * be on their way to us: a dumped process's channel is read to its end first (briefly), so a call in
 * it is held, and carried, rather than lost.
 */
export async function writeResumeNote(session: Session, dir: string, callId: number | null, options: { leftRunning?: boolean } = {}): Promise<void> {
  if (!options.leftRunning && session.proc) await within(new Promise((resolve) => (session.proc!.ipc.readableEnded ? resolve(null) : session.proc!.ipc.once("close", resolve).once("end", resolve))), 1000);
  await writeFile(join(dir, "resume.json"), JSON.stringify({ callId, calls: session.calls.held } satisfies ResumeNote));
}

/** Seals the dump in `dir` under a fresh key into the store. */
export async function storeDump(session: Session, dir: string): Promise<{ stored: { location: string; sizeBytes: number; sha256: string }; key: Buffer }> {
  // A fresh key per checkpoint: the server keeps it wrapped by the project's data key and gives it back only to the runner that resumes this run.
  const key = randomBytes(CHECKPOINT_KEY_BYTES);
  const stored = await session.deps.checkpoints!.put(`${session.runId}/${session.claim.attempt}-${Date.now()}`, dir, { key });
  return { stored, key };
}

/** Waits until no call of the task is being answered (a checkpoint must not cut one off from its reply), or `deadline`. */
export async function callsSettled(session: Session, deadline: number): Promise<boolean> {
  while (session.calls.inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return session.calls.inFlight === 0;
}
