import type { ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { writeCheckpointMeta } from "./checkpoint-meta.ts";
import { dirSize } from "./dir-size.ts";
import { runCriu } from "./criu.ts";
import type { CriuGuardTools } from "./criu-guard.ts";
import { WorkloadError } from "./errors.ts";
import { socketInode } from "./namespace.ts";
import { awaitRootSaved, saveRootBeside, saveScratchCommand, SCRATCH_MOUNTS } from "./task-root.ts";
import { postDumpScript } from "./dump-verdict.ts";
import { detachTransientMountsPrefix, externalMountDumpArgs, readMountinfo } from "./transient-mounts.ts";
import type { TaskHandle } from "./task-process.ts";
import type { CheckpointResult } from "./types.ts";

export interface DumpTaskOptions {
  criuPath: string;
  criuVersion: string;
  workDir: string;
  /** What criu runs under, so that it dies with the runner. */
  guard: CriuGuardTools;
  /** `--leave-running`: the task goes on after the dump (a safety checkpoint). */
  leaveRunning?: boolean;
  /** The environment criu runs in (criu-user.ts's criuEnvironment). */
  criuEnv?: NodeJS.ProcessEnv;
  /** A guard started ahead (criu-standby.ts) with `criuEnv`, or null: `guard` is spawned. */
  waitingGuard?: () => ChildProcess | null;
  /** Whether the dumped task ends (true) or goes on (false), decided while criu runs (dump-verdict.ts). */
  verdict?: Promise<boolean>;
  /** The dumped task stays, stopped, instead of ending (dump-verdict.ts `stopTree`). */
  stopAfter?: boolean;
  /** Written into the checkpoint's meta (checkpoint-meta.ts `dumpId`). */
  dumpId?: string;
}

/**
 * `criu dump` of the task's whole PID namespace. Its stdio/ipc/status sockets lead to this runner,
 * outside the dumped tree, so they are declared external and re-attached to fresh sockets on restore.
 */
export async function dumpTask(handle: TaskHandle, imageDir: string, options: DumpTaskOptions): Promise<CheckpointResult> {
  if (!handle.running) throw new WorkloadError("NOT_RUNNING", `task ${handle.proc.id} is not running`);
  const began = performance.now();
  const steps: Record<string, number> = {};
  const step = (name: string) => (steps[name] = Math.round(performance.now() - began));
  const pid = await handle.parts.initPid();
  const [stdout, stderr, ipc, status] = await Promise.all([1, 2, 3, 4].map((fd) => socketInode(pid, fd))).catch((err) => {
    throw new WorkloadError("DUMP_FAILED", `cannot checkpoint task ${handle.proc.id}: ${(err as Error).message}`, { cause: err });
  });

  step("sockets");
  const { mounts } = handle.parts;
  // The task's mounts when it shares the host's mount table (a sandboxed one has its own, listed in `mounts`).
  const hostMounts = mounts ? null : readMountinfo(pid);
  const imageAbs = path.resolve(imageDir);
  // Synchronous, as the /proc reads: a few dirs and a file on the suspend's critical path, each an event-loop hop otherwise.
  mkdirSync(imageAbs, { recursive: true });
  mkdirSync(options.workDir, { recursive: true });
  const work = mkdtempSync(path.join(options.workDir, "dump-"));
  // Before criu, in its command: a task on the host's mount table sheds what CRIU cannot dump. Beside it: a sandboxed task's root is saved.
  const before = hostMounts ? detachTransientMountsPrefix(pid, hostMounts) : null;
  const beside = mounts ? saveRootBeside(pid, imageAbs, work) : undefined;
  step("root");
  const args = ["dump", "-t", String(pid), "-D", imageAbs, "-W", work, "-o", "dump.log", "--tcp-established", "--file-locks"];
  if (options.leaveRunning || options.stopAfter) args.push("--leave-running");
  let declined = false;
  const verdict = options.verdict ?? (options.stopAfter ? Promise.resolve(true) : undefined);
  if (verdict) void verdict.then((go) => (declined = !go), () => (declined = true));
  // A sandboxed task's /tmp and /dev/shm are saved while criu holds it frozen, as its memory is, and it is not let go before its root is saved.
  const first = mounts ? `${saveScratchCommand(pid, imageAbs)} && ${awaitRootSaved(work)}` : undefined;
  if (verdict || first) args.push("--action-script", postDumpScript(work, { verdict, stopTree: options.stopAfter ? pid : undefined, first }));
  for (const ino of new Set([stdout, stderr, ipc, status])) args.push("--external", `unix[${ino}]`);
  // A sandboxed task's binds, and its /tmp and /dev/shm, whose content the post-dump script keeps (CRIU would fork a tar and a gzip for each).
  if (mounts) for (const m of [...mounts, ...SCRATCH_MOUNTS]) args.push("--external", `mnt[${m.mountPoint}]:${m.key}`);
  else args.push(...externalMountDumpArgs(hostMounts!));

  step("args");
  const started = performance.now();
  try {
    await runCriu(options.criuPath, args, { logFile: path.join(work, "dump.log"), workDir: work, guard: options.guard, user: handle.parts.user, env: options.criuEnv, waiting: options.waitingGuard?.(), before, beside });
  } catch (err) {
    if (declined) throw new WorkloadError("DUMP_DECLINED", `the dump of task ${handle.proc.id} was not taken: its verdict said go on`, { cause: err });
    throw new WorkloadError("DUMP_FAILED", `checkpoint of task ${handle.proc.id} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const dumpMs = Math.round(performance.now() - started);
  step("criu");
  await writeCheckpointMeta(imageAbs, {
    format: mounts ? 2 : 1,
    runtime: "process",
    sockets: { stdout, stderr, ipc, status },
    criuVersion: options.criuVersion,
    dumpedAt: new Date().toISOString(),
    ...(options.dumpId ? { dumpId: options.dumpId } : {}),
    ...(handle.parts.user ? { user: handle.parts.user } : {}),
    ...(mounts ? { mounts } : {}),
  });
  step("meta");
  if (!options.leaveRunning && !options.stopAfter) await handle.proc.exited; // CRIU killed the tree; wait until our side has seen it go
  step("exited");
  const sizeBytes = dirSize(imageAbs);
  step("sized");
  return { dumpMs, sizeBytes, steps };
}
