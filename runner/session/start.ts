import { execFile } from "node:child_process";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ClaimedRun } from "../../schemas/index.ts";
import { CheckpointIntegrityError } from "../checkpoint-store/index.ts";
import { envDigest } from "../env-digest.ts";
import { hardwareRandomFiles, probeHardwareRandomFlags } from "../hardware-random.ts";
import { SANDBOX_ENV, taskSandboxFor } from "../task-sandboxes.ts";
import { attach, handToProcess } from "./attach.ts";
import { finish } from "./finish.ts";
import type { ResumeNote } from "./checkpoint.ts";
import { placement, restoreInto, thawInto } from "./restore.ts";
import { createTimeline } from "./timeline.ts";
import type { Session } from "./session.ts";

/**
 * The session's first step: a fresh task process (from the warm pool when it has one), or the
 * process of a resume restored from its checkpoint. A failure fails the attempt.
 */
export function start(session: Session): void {
  void begin(session).catch((error: Error) => {
    if (session.state.over) return; // stopped (canceled, lease lost, drained) while it started: nothing to report
    session.log.error({ runId: session.runId, err: error.message }, "could not start the run");
    // A refused checkpoint fails this attempt under its own name; the run's next attempt starts afresh.
    const name = error instanceof CheckpointIntegrityError ? error.name : "RunStartFailed";
    if (name === "CheckpointIntegrityError") session.systemLog("error", `${name}: ${error.message}`);
    void finish(session, { ok: false, error: { name, message: error.message }, crashed: true });
  });
}

async function begin(session: Session): Promise<void> {
  const { claim, deps, runId } = session;
  const appDir = await deps.appDirFor(claim.deployment);
  if (claim.resume) {
    const { checkpointLocation, sha256, key } = claim.resume;
    // Its own process, kept stopped here since its dump: it goes on from there, and the dump kept beside it is of no use any more.
    const stopped = deps.stoppedProcesses?.take(checkpointLocation);
    if (stopped) {
      session.timeline = createTimeline(performance.now() - (Date.now() - session.startedAt.claimReceived));
      void deps.localCheckpoints?.discard(checkpointLocation);
      return await thawInto(session, stopped, claim.resume.result);
    }
    // The restore dir holds the process's memory in clear for as long as the restore takes: 0700, removed right after.
    const dir = join(deps.scratchDir, "restores", `${runId}-${Date.now()}`);
    const fetchStarted = Date.now();
    session.timeline = createTimeline(performance.now() - (Date.now() - session.startedAt.claimReceived));
    session.timeline.mark("appDir");
    try {
      if (!sha256 || !key) throw new CheckpointIntegrityError(`checkpoint ${checkpointLocation} has no sha256 recorded by the server: refusing to restore an unverifiable checkpoint`);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      // This runner's own dump of exactly this checkpoint, when it kept it: it never left the work dir (nothing to
      // verify against the sealed copy, nothing to unseal or unpack). Else the sealed copy, verified.
      const fromLocalDump = (await deps.localCheckpoints?.take(checkpointLocation, dir)) ?? false;
      if (!fromLocalDump) await deps.checkpoints!.get(checkpointLocation, dir, { key: Buffer.from(key, "base64"), sha256 });
      session.timeline.mark("fetched");
      const note = JSON.parse(await readFile(join(dir, "resume.json"), "utf8")) as ResumeNote;
      // Calls the process made as it was dumped, not asked of the server yet: asked here once it runs.
      session.calls.held.push(...(note.calls ?? []));
      const { callId } = note;
      await restoreInto(session, dir, callId, claim.resume.result, { fetchMs: Date.now() - fetchStarted, fromLocalDump });
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    }
    return;
  }
  const entry = join(appDir, claim.deployment.manifest.entry);
  const where = await placement(session);
  const sandbox = deps.taskSandbox ? taskSandboxFor(deps.taskSandbox, claim, appDir) : undefined;
  // The environment's variables win over the runner's --env-file; the runner's own few (PATH, STASIS_WORKER_MODE…) win over both.
  const env = { ...(sandbox ? SANDBOX_ENV : {}), ...deps.taskEnv, ...claim.env, ...baseTaskEnv() };
  const reused = where.rootfs ? null : await deps.keepAlive?.take(claim);
  let ready: boolean;
  if (reused) {
    session.runsInProcess = reused.runs + 1;
    attach(session, reused.proc);
    ready = true;
  } else {
    const flags = await taskNodeFlags();
    const files = hardwareRandomFiles(); // probed by now
    const startProcess = () => deps.runtime.start({ command: process.execPath, args: [...flags, entry], cwd: appDir, env, files, sandbox, ...where });
    // A spare process of this deployment has run nothing yet; runtimes that apply per-task limits start their own. Spares are
    // kept per environment (its own task user) and set of variables: a spare only ever runs what it was started for.
    const spareKey = `${claim.deployment.id}:${claim.environmentNumber}:${envDigest(env)}`;
    const taken = deps.warmPool && !where.rootfs ? await deps.warmPool.take(spareKey, startProcess) : { proc: await startProcess(), ready: false };
    attach(session, taken.proc);
    ready = taken.ready;
  }
  session.startedAt.processInHand = Date.now();
  // Stopped (canceled, lease lost) while it started: the new process must not run on.
  if (!session.state.tryMove("running")) return void (await session.proc?.kill().catch(() => {}));
  // A spare's or a kept process's `ready` was read long ago: the run goes to it now.
  if (ready) handToProcess(session);
}

export function contextOf(claim: ClaimedRun) {
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

let nodeFlags: Promise<string[]> | undefined;

/**
 * V8 protects wasm code with memory protection keys (PKU) when the CPU has them; CRIU does not bring
 * the process's pkey allocation back, so wasm code compiled after a restore (undici's llhttp behind
 * every `fetch` tiers up) aborts the task. Turned off where this Node knows the flag.
 *
 * Probed once, in child processes the runner does not wait for with its event loop blocked: on a
 * loaded 2-core machine the two probes (a Node start each) held a runner's first task start, and its
 * heartbeats with it, for up to 3 s.
 *
 * No `--enable-source-maps`: it parsed the bundle's map in every task start (~130 ms of CPU); the
 * runner maps the stacks a run prints or fails with instead (stack-mapper.ts), once per deployment.
 */
function taskNodeFlags(): Promise<string[]> {
  nodeFlags ??= Promise.all([exitsZero(["--no-wasm-memory-protection-keys", "-e", "0"]), probeHardwareRandomFlags()]).then(([pkeys, random]) => [
    ...(pkeys ? ["--no-wasm-memory-protection-keys"] : []),
    ...random,
  ]);
  return nodeFlags;
}

/** Whether this Node exits 0 with these arguments. */
function exitsZero(args: string[]): Promise<boolean> {
  return new Promise((resolve) => execFile(process.execPath, args, { timeout: 10_000 }, (error) => resolve(!error)));
}

function baseTaskEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", STASIS_WORKER_MODE: "run", UV_USE_IO_URING: "0", NODE_ENV: process.env.NODE_ENV ?? "production" };
  if (process.env.TZ) env.TZ = process.env.TZ;
  return env;
}
