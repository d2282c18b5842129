import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, watch } from "node:fs";
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import path from "node:path";
import type { Duplex, Readable } from "node:stream";
import { readCheckpointMeta } from "./checkpoint-meta.ts";
import { logSummary } from "./criu.ts";
import { guardedCriu, handCommand, type GuardKind } from "./criu-guard.ts";
import { WorkloadError } from "./errors.ts";
import { pollFor } from "./poll.ts";
import { populateDumpedMemory } from "./populate-dumped-memory.ts";
import { createTaskHandle, type TaskHandle } from "./task-process.ts";
import type { TaskUser } from "./criu-user.ts";
import { rootArchiveField } from "./root-templates.ts";
import { APP_MOUNT_KEY, restoreRootPrefix, ROOT_ARCHIVE, SCRATCH_ARCHIVE, SCRATCH_MOUNTS, scratchSize, recentTaskRootOps, type ExternalMount, type RestoreScratch } from "./task-root.ts";
import { externalMountRestoreArgs } from "./transient-mounts.ts";
import type { RestoreTaskOptions } from "./types.ts";
import { watchRestoredInit } from "./restored-init-watch.ts";

export interface RestoreTaskRuntimeOptions {
  criuPath: string;
  /** The restored process's id (`TaskProcess.id`). */
  id?: string;
  setprivPath: string;
  bashPath: string;
  workDir: string;
  /** An empty dir of the runner's: a sandboxed task's root is rebuilt over it (in criu's own mount namespace). */
  rootDir?: string;
  /** A dir of the runner's with an empty dir per task-root.ts's SCRATCH_MOUNTS: a sandboxed task's /tmp and /dev/shm are rebuilt over them (the same way). */
  scratchDir?: string;
  /** Called with the PIDs to end should this runner die before they do (the guard, then the restored init). */
  onPids?: (pids: number[]) => void;
  /**
   * A guard started ahead with `RESTORE_FDS` extra pipes (criu-standby.ts), handed criu's command instead of a
   * spawn: "root" for a sandboxed task's restore (its root mounted ahead), "plain" for any other; null: none waits.
   */
  takeGuard?: (kind: GuardKind) => ChildProcess | null;
  /** A root standby guard this runner handed the checkpoint's part ahead (prepared-restores.ts), for its `dumpId` and scratch size; null: none. */
  takePrepared?: (dumpId: string | undefined, size: string) => Promise<ChildProcess | null>;
  /** Notes a sandboxed checkpoint's root (its image dir) as the runtime's newest template (root-templates.ts); its content key. */
  noteRoot?: (imageDir: string) => string | undefined;
}

/** The pipes a restore gives criu besides stdio: fds 3–6, the task's new stdout, stderr, ipc and status sockets. */
export const RESTORE_FDS = 4;

const RESTORE_TIMEOUT_MS = 60_000;

/**
 * A checkpoint names the host paths its restore binds into the task's root: only those this runner
 * would bind for the task itself are accepted, so no checkpoint widens what a task sees.
 */
async function refuseForeignBinds(mounts: ExternalMount[], opts: RestoreTaskOptions, user: TaskUser | undefined, imageDir: string): Promise<void> {
  const sandbox = opts.sandbox ?? { uid: user?.uid ?? 0, gid: user?.gid ?? 0, expose: [], hide: [], shared: [] };
  const allowed = new Set((await recentTaskRootOps(sandbox, opts.cwd)).externals.map((m) => m.key));
  const foreign = mounts.filter((m) => !allowed.has(m.key));
  if (foreign.length > 0) throw new WorkloadError("BAD_CHECKPOINT", `${imageDir} would bind ${foreign.map((m) => m.key).join(", ")} into the task, which its sandbox does not`);
}

/** The pid file's text, or "" before criu wrote it. */
function readPidFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

const rootDir = (options: RestoreTaskRuntimeOptions) => options.rootDir ?? path.join(options.workDir, "sandbox-root");
const scratchDir = (options: RestoreTaskRuntimeOptions) => options.scratchDir ?? path.join(options.workDir, "sandbox-scratch");

/**
 * `criu restore` in the foreground, under a guard (criu-guard.ts) that is our child: criu stays the
 * parent of the restored namespace and exits after it; the guard takes both down with the runner. Fresh sockets on criu's fds 3–6 replace the dumped stdout, stderr, ipc and
 * status sockets (matched by the inodes recorded at dump time).
 */
export async function restoreTask(imageDir: string, opts: RestoreTaskOptions, options: RestoreTaskRuntimeOptions): Promise<TaskHandle> {
  const imageAbs = path.resolve(imageDir);
  const meta = await readCheckpointMeta(imageAbs);
  populateDumpedMemory(imageAbs);
  // Synchronous, as the pid file's read below: on the resume's critical path, each an event-loop hop otherwise.
  mkdirSync(options.workDir, { recursive: true });
  const work = mkdtempSync(path.join(options.workDir, "restore-"));
  const pidFile = path.join(work, "task.pid");
  const logFile = path.join(work, "restore.log");
  const { stdout, stderr, ipc, status } = meta.sockets;
  const args = ["restore", "-D", imageAbs, "-W", work, "-o", "restore.log", "--root", meta.mounts ? rootDir(options) : "/", "--tcp-established", "--file-locks", "--pidfile", pidFile];
  [stdout, stderr, ipc, status].forEach((ino, i) => args.push("--inherit-fd", `fd[${3 + i}]:socket:[${ino}]`));
  // A sandboxed task's binds: each to the same host path, the app dir to this runner's copy of it.
  if (meta.mounts) {
    await refuseForeignBinds(meta.mounts, opts, meta.user, imageAbs);
    for (const m of meta.mounts) args.push("--external", `mnt[${m.key}]:${m.key === APP_MOUNT_KEY ? path.resolve(opts.cwd) : m.key}`);
  }
  else args.push(...externalMountRestoreArgs());
  // A sandboxed task's /tmp and /dev/shm: tmpfs mounts the guard fills from the checkpoint's archive, for criu to bind (format 2).
  const scratch: RestoreScratch = { archive: "", dir: scratchDir(options), size: scratchSize(opts.sandbox) };
  if (meta.mounts && meta.format === 2) {
    scratch.archive = path.join(imageAbs, SCRATCH_ARCHIVE);
    if (!existsSync(scratch.archive)) throw new WorkloadError("BAD_CHECKPOINT", `${imageAbs} has no ${SCRATCH_ARCHIVE}: the task's /tmp and /dev/shm are not in it`);
    for (const m of SCRATCH_MOUNTS) args.push("--external", `mnt[${m.key}]:${path.join(scratch.dir, m.dir)}`);
  }

  // The guard dies with the runner and kills criu and what it forked, even mid-restore; a restored
  // init also has its own pdeathsig (set by `unshare --kill-child`, restored by CRIU) towards criu.
  const prepared = meta.mounts ? ((await options.takePrepared?.(meta.dumpId, scratch.size)) ?? null) : null;
  const rootGuard = prepared ?? (meta.mounts ? (options.takeGuard?.("root") ?? null) : null);
  const guard = rootGuard ?? options.takeGuard?.("plain") ?? null;
  const criu = [...(meta.mounts && !rootGuard ? restoreRootPrefix(rootDir(options), imageAbs, scratch) : []), options.criuPath, ...args];
  const rootKey = meta.mounts ? options.noteRoot?.(imageAbs) : undefined;
  if (rootGuard && !prepared) handCommand(rootGuard, work, { cwd: opts.cwd, command: criu }, [rootArchiveField(rootGuard, path.join(imageAbs, ROOT_ARCHIVE), rootKey), scratch.archive, scratch.size]);
  else if (guard) handCommand(guard, work, { cwd: opts.cwd, command: criu });
  const [file, argv] = guardedCriu({ setpriv: options.setprivPath, bash: options.bashPath }, criu);
  const child = guard ?? spawn(file, argv, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe", ...Array.from({ length: RESTORE_FDS }, () => "pipe" as const)] });
  if (child.pid) options.onPids?.([child.pid]);
  let criuOutput = "";
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => (criuOutput = (criuOutput + chunk).slice(-4000)));
  }
  let exited: { code: number | null; signal: string | null } | undefined;
  let spawnError: Error | undefined;
  child.once("exit", (code, signal) => (exited = { code, signal }));
  child.once("error", (err) => (spawnError = err));

  const fail = async (message: string, cause?: unknown): Promise<never> => {
    // SIGTERM: the guard ends criu and everything criu forked (a half-restored namespace init too).
    child.kill("SIGTERM");
    const summary = await logSummary(logFile, { stderr: criuOutput });
    await rm(work, { recursive: true, force: true });
    throw new WorkloadError("RESTORE_FAILED", `restore of ${imageAbs} failed: ${message}: ${summary}`, { cause });
  };

  // criu writes the pid file as the restored tree resumes: a watch on its dir sees it at once, not at the next poll.
  let nudge: (() => void) | undefined;
  const nudged = () => new Promise<void>((resolve) => (nudge = resolve));
  const watcher = (() => {
    try {
      return watch(work, () => nudge?.());
    } catch {
      return undefined;
    }
  })();
  watcher?.on("error", () => {});
  child.once("exit", () => nudge?.());
  let pid: number;
  try {
    pid = await pollFor(
      async () => {
        if (spawnError) throw spawnError;
        const text = readPidFile(pidFile);
        if (/^\d+\s*$/.test(text)) return Number(text);
        if (exited) throw new Error(`criu exited (${exited.signal ?? exited.code}) before the task was restored`);
        return undefined;
      },
      RESTORE_TIMEOUT_MS,
      "criu restore",
      nudged,
    );
  } catch (err) {
    return fail((err as Error).message, err);
  } finally {
    watcher?.close();
  }

  options.onPids?.([pid]);
  watchRestoredInit(pid, child);
  const fds = child.stdio as unknown as Array<Readable & Duplex>;
  const handle = createTaskHandle({
    id: options.id ?? `restored-${randomUUID()}`,
    child,
    stdout: fds[3],
    stderr: fds[4],
    ipc: fds[5],
    status: fds[6],
    initPid: async () => pid,
    user: meta.user,
    mounts: meta.mounts,
  });
  void handle.proc.exited.finally(() => rm(work, { recursive: true, force: true }));
  return handle;
}
