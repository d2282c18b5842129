import { join } from "node:path";
import { RESTORED_NOTICE_CALL_ID, type WaitResult } from "../../schemas/index.ts";
import { taskSandboxFor } from "../task-sandboxes.ts";
import type { StoppedProcess } from "../stopped-processes.ts";
import type { RestoreTaskOptions, TaskProcess } from "../workload/index.ts";
import { attach } from "./attach.ts";
import type { Session } from "./session.ts";

/**
 * Restores the run's process from the dump in `dir` (this runner's own, or a fetched checkpoint) and
 * hands it the result of the wait it was frozen in (none when it was frozen while running: a drain or
 * a safety checkpoint). Moves the session through restoring to running.
 */
export async function restoreInto(session: Session, dir: string, callId: number | null, result: WaitResult | null, fetched?: { fetchMs: number; fromLocalDump: boolean }): Promise<void> {
  const started = Date.now();
  session.state.move("restoring");
  const options = await restoreOptions(session);
  session.timeline.mark("restoreOptions");
  const restored = await session.deps.runtime.restore(join(dir, "images"), options);
  session.timeline.mark("restored");
  session.restored = true;
  attach(session, restored);
  // Stopped (canceled, lease lost) while it was restored: the process must not run on.
  if (!session.state.tryMove("running")) return void (await restored.kill().catch(() => {}));
  handWaitAnswer(session, callId, result);
  session.log.info({ runId: session.runId, restoreMs: Date.now() - started, ...fetched, timeline: session.timeline.marks }, "run restored");
}

/**
 * Continues the run's own process, which its dump left stopped (stopped-processes.ts), and hands it
 * the result of the wait it was stopped in: what a restore does, without CRIU rebuilding the process.
 */
export async function thawInto(session: Session, stopped: StoppedProcess, result: WaitResult | null): Promise<void> {
  const started = Date.now();
  session.state.move("restoring");
  session.calls.held.push(...stopped.calls.filter((held) => !session.calls.held.includes(held)));
  if (!(await continueStopped(session, stopped.proc))) return;
  session.timeline.mark("thawed");
  handWaitAnswer(session, stopped.callId, result);
  session.log.info({ runId: session.runId, restoreMs: Date.now() - started, thawed: true, timeline: session.timeline.marks }, "run restored");
}

/**
 * Makes a process its dump left stopped the session's again (restoring → running) and continues it;
 * false: the session was stopped meanwhile, and the process is killed instead.
 */
export async function continueStopped(session: Session, proc: TaskProcess): Promise<boolean> {
  session.silenced.delete(proc); // silenced by its dump, which did not end it
  // This session's own process (its wait ended while it was being suspended): read by one reader, not two.
  session.stopReading.forEach((stopReading) => stopReading());
  attach(session, proc);
  if (!session.state.tryMove("running")) {
    await proc.kill().catch(() => {});
    return false;
  }
  await proc.thaw!();
  return true;
}

/** The restored (or thawed) process learns how its wait ended: its result, or, frozen while running, that it was restored. */
function handWaitAnswer(session: Session, callId: number | null, result: WaitResult | null): void {
  if (callId !== null && result) session.channel!.send({ type: "wait-result", callId, result });
  else session.channel!.send({ type: "reply", callId: RESTORED_NOTICE_CALL_ID, ok: true });
  session.timeline.mark("resultSent");
}

/** Where the image's rootfs is and the task's machine, when the runtime runs the image itself. */
export async function placement(session: Session): Promise<{ rootfs?: string; machine?: { cpu: number; memory: number }; image?: { ref: string; digest: string } }> {
  const { deps, claim } = session;
  if (!deps.rootfsFor) return {};
  const machine = claim.deployment.manifest.tasks.find((t) => t.id === claim.taskId)?.machine;
  // The image itself too, for a runtime whose engine runs it (container); the others use the rootfs.
  const image = { ref: claim.deployment.imageRef, digest: claim.deployment.imageDigest };
  return { rootfs: await deps.rootfsFor(claim.deployment), machine: machine && { cpu: machine.cpu, memory: machine.memory }, image };
}

/** A restore's options: this runner's copy of the app, and the sandbox it would give the task now (what a checkpoint may bind is checked against it). */
export async function restoreOptions(session: Session): Promise<RestoreTaskOptions> {
  const { deps, claim } = session;
  const cwd = await deps.appDirFor(claim.deployment);
  return { cwd, ...(await placement(session)), ...(deps.taskSandbox ? { sandbox: taskSandboxFor(deps.taskSandbox, claim, cwd) } : {}) };
}
