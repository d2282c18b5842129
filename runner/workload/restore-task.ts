import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { Duplex, Readable } from "node:stream";
import { readCheckpointMeta } from "./checkpoint-meta.ts";
import { logSummary } from "./criu.ts";
import { WorkloadError } from "./errors.ts";
import { pollFor } from "./poll.ts";
import { createTaskHandle, type TaskHandle } from "./task-process.ts";
import { externalMountRestoreArgs } from "./transient-mounts.ts";
import type { RestoreTaskOptions } from "./types.ts";

export interface RestoreTaskRuntimeOptions {
  criuPath: string;
  setprivPath: string;
  workDir: string;
}

const RESTORE_TIMEOUT_MS = 60_000;

/**
 * `criu restore` in the foreground, as our child: it stays the parent of the restored namespace
 * and exits after it. Fresh sockets on criu's fds 3–6 replace the dumped stdout, stderr, ipc and
 * status sockets (matched by the inodes recorded at dump time).
 */
export async function restoreTask(imageDir: string, opts: RestoreTaskOptions, options: RestoreTaskRuntimeOptions): Promise<TaskHandle> {
  const imageAbs = path.resolve(imageDir);
  const meta = await readCheckpointMeta(imageAbs);
  await mkdir(options.workDir, { recursive: true });
  const work = await mkdtemp(path.join(options.workDir, "restore-"));
  const pidFile = path.join(work, "task.pid");
  const logFile = path.join(work, "restore.log");
  const { stdout, stderr, ipc, status } = meta.sockets;
  const args = ["restore", "-D", imageAbs, "-W", work, "-o", "restore.log", "--root", "/", "--tcp-established", "--file-locks", "--pidfile", pidFile];
  [stdout, stderr, ipc, status].forEach((ino, i) => args.push("--inherit-fd", `fd[${3 + i}]:socket:[${ino}]`));
  args.push(...externalMountRestoreArgs());

  // pdeathsig: criu dies with the runner, and the restored init (whose own pdeathsig, set by
  // `unshare --kill-child`, CRIU restores) dies with criu.
  const child = spawn(options.setprivPath, ["--pdeathsig", "KILL", options.criuPath, ...args], { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe", "pipe", "pipe", "pipe", "pipe"] });
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
    child.kill("SIGKILL");
    const summary = await logSummary(logFile, { stderr: criuOutput });
    await rm(work, { recursive: true, force: true });
    throw new WorkloadError("RESTORE_FAILED", `restore of ${imageAbs} failed: ${message}: ${summary}`, { cause });
  };

  let pid: number;
  try {
    pid = await pollFor(
      async () => {
        if (spawnError) throw spawnError;
        const text = await readFile(pidFile, "utf8").catch(() => "");
        if (/^\d+\s*$/.test(text)) return Number(text);
        if (exited) throw new Error(`criu exited (${exited.signal ?? exited.code}) before the task was restored`);
        return undefined;
      },
      RESTORE_TIMEOUT_MS,
      "criu restore",
    );
  } catch (err) {
    return fail((err as Error).message, err);
  }

  const fds = child.stdio as unknown as Array<Readable & Duplex>;
  const handle = createTaskHandle({
    id: `restored-${randomUUID()}`,
    child,
    stdout: fds[3],
    stderr: fds[4],
    ipc: fds[5],
    status: fds[6],
    initPid: async () => pid,
  });
  void handle.proc.exited.finally(() => rm(work, { recursive: true, force: true }));
  return handle;
}
