import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import type { Duplex, Readable } from "node:stream";
import { childExit, killNamespaceInit } from "./child-exit.ts";
import type { TaskUser } from "./criu-user.ts";
import type { ExternalMount } from "./task-root.ts";
import type { TaskExit, TaskProcess } from "./types.ts";

export interface TaskProcessParts {
  id: string;
  /** The process the runtime spawned: `unshare`, `criu restore`, or the task itself. */
  child: ChildProcess;
  stdout: Readable;
  stderr: Readable;
  ipc: Duplex;
  /** The in-namespace supervisor's `exit N` line; absent for a plainly spawned task. */
  status?: Readable;
  /** Host PID of the process to dump or SIGKILL (the namespace's init, or the task). */
  initPid(): Promise<number>;
  /** The unprivileged user the task runs as (a sandboxed task); criu may have to run as it too. */
  user?: TaskUser;
  /** A sandboxed task's binds from the host (task-root.ts), declared external to CRIU; absent: the task shares the host's mount table. */
  mounts?: ExternalMount[];
}

/** What the runtime keeps about each process it handed out. */
export interface TaskHandle {
  proc: TaskProcess;
  parts: TaskProcessParts;
  readonly running: boolean;
}

/**
 * How long `kill()` waits for the task to be gone before it ends the spawned child itself (SIGTERM,
 * then SIGKILL), and how long the status socket may stay open after that child exited. Both bound a
 * wait that otherwise depends on every holder of the socket: a `criu restore` that failed after the
 * task resumed ("Unable to detach … No such process") kept it open, and `exited` never settled.
 */
const GRACE_MS = 5_000;

export function createTaskHandle(parts: TaskProcessParts): TaskHandle {
  let running = true;
  const childExited = childExit(parts.child);
  const statusLine = readStatus(parts.status, childExited);
  const exited = Promise.all([childExited, statusLine]).then(([child, status]) => {
    running = false;
    if (!parts.status) return child;
    // The supervisor was SIGKILLed with its namespace (kill or checkpoint) before it could report.
    if (status === undefined) return { code: null, signal: "SIGKILL" };
    return statusToExit(status);
  });

  const proc: TaskProcess = {
    id: parts.id,
    stdout: parts.stdout,
    stderr: parts.stderr,
    ipc: parts.ipc,
    exited,
    async kill() {
      if (running) {
        killNamespaceInit(await parts.initPid().catch(() => undefined), parts.child);
      }
      // The spawned child (`unshare`, or the CRIU guard, which stops criu and its tree) should follow
      // the namespace at once; one that does not is ended here.
      for (const signal of ["SIGTERM", "SIGKILL"] as const) {
        if (await settlesWithin(exited, GRACE_MS)) return;
        parts.child.kill(signal);
      }
      await exited;
    },
    async thaw() {
      for (const pid of processTree(await parts.initPid())) {
        try {
          process.kill(pid, "SIGCONT");
        } catch {
          // gone meanwhile
        }
      }
    },
  };
  return {
    proc,
    parts,
    get running() {
      return running;
    },
  };
}

/**
 * `root` and every process below it, parents first (each task's `children`, as the kernel lists them).
 * Read synchronously: a few small reads of procfs, which never wait on a disk, where the thread pool's
 * hops cost a busy event loop milliseconds each while the run waits to go on.
 */
function processTree(root: number): number[] {
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${tree[i]}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tasks) {
      try {
        tree.push(...readFileSync(`/proc/${tree[i]}/task/${tid}/children`, "utf8").split(" ").filter(Boolean).map(Number));
      } catch {
        // the thread or the process is gone
      }
    }
  }
  return tree;
}

/** Settles with whether `promise` settled within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** The supervisor's exit status, read until the socket ends or, once the child has exited, `GRACE_MS` later. */
function readStatus(status: Readable | undefined, childExited: Promise<unknown>): Promise<number | undefined> {
  if (!status) return Promise.resolve(undefined);
  void childExited.then(() => setTimeout(() => status.destroy(), GRACE_MS).unref());
  return new Promise((resolve) => {
    let text = "";
    status.setEncoding("utf8");
    status.on("data", (chunk: string) => (text += chunk));
    const done = () => {
      const match = /^exit (\d+)$/m.exec(text);
      resolve(match ? Number(match[1]) : undefined);
    };
    status.once("end", done);
    status.once("close", done);
    status.once("error", done);
  });
}

/** A shell reports death by signal N as 128+N; an exit code above 128 is read the same way. */
function statusToExit(status: number): TaskExit {
  if (status > 128) {
    const name = Object.entries(constants.signals).find(([, n]) => n === status - 128)?.[0];
    if (name) return { code: null, signal: name };
  }
  return { code: status, signal: null };
}
