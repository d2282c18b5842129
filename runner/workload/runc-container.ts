import type { ChildProcess } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { constants } from "node:os";
import type { Duplex, Readable } from "node:stream";
import type { TaskCgroup } from "./runc-cgroup.ts";
import type { MachineLimits } from "./runc-spec.ts";
import { childExit, killNamespaceInit } from "./child-exit.ts";
import type { TaskExit, TaskProcess } from "./types.ts";

export interface ContainerParts {
  id: string;
  bundle: string;
  /** `runc run` or `runc restore` in the foreground: it exits with the task (128+N for signal N). */
  child: ChildProcess;
  stdout: Readable;
  stderr: Readable;
  ipc: Duplex;
  pidFile: string;
  cgroup: TaskCgroup;
  machine?: MachineLimits;
}

/** What the runc runtime keeps about each container it handed out. */
export interface Container {
  proc: TaskProcess;
  parts: ContainerParts;
  readonly running: boolean;
  /** The next SIGKILL is ours (a checkpoint): not a crash, whatever the cgroup says. */
  expectKill(expected?: boolean): void;
  /** Host PID of the task (PID 1 of the container), once runc has written it. */
  pid(): Promise<number>;
}

const STREAM_DRAIN_MS = 2_000;

export function createContainer(parts: ContainerParts): Container {
  let running = true;
  let killing = false;
  const ended = childExit(parts.child);
  const exited: Promise<TaskExit> = ended.then(async (raw) => {
    running = false;
    const exit = toExit(raw);
    // A SIGKILL that neither kill() nor a checkpoint sent, at the memory limit: the OOM killer.
    if (exit.signal === "SIGKILL" && !killing && parts.machine && (await parts.cgroup.memoryLimitHit())) {
      exit.reason = { name: "MemoryLimitExceeded", message: `exceeded memory limit of ${parts.machine.memory} MB` };
    }
    await Promise.all([drained(parts.stdout), drained(parts.stderr)]);
    await parts.cgroup.remove();
    await rm(parts.bundle, { recursive: true, force: true }).catch(() => {});
    return exit;
  });

  let pidPromise: Promise<number> | undefined;
  const pid = () =>
    (pidPromise ??= (async () => {
      for (let interval = 2; ; interval = Math.min(interval * 2, 20)) {
        const text = await readFile(parts.pidFile, "utf8").catch(() => "");
        if (/^\d+\s*$/.test(text)) return Number(text);
        if (!running) throw new Error(`container ${parts.id} is gone`);
        await new Promise((resolve) => setTimeout(resolve, interval));
      }
    })());

  const proc: TaskProcess = {
    id: parts.id,
    stdout: parts.stdout,
    stderr: parts.stderr,
    ipc: parts.ipc,
    exited,
    async kill() {
      if (running) {
        killing = true;
        killNamespaceInit(await Promise.race([pid().catch(() => undefined), ended.then(() => undefined)]), parts.child);
      }
      await exited;
    },
  };
  return {
    proc,
    parts,
    pid,
    expectKill: (expected = true) => void (killing = expected),
    get running() {
      return running;
    },
  };
}

/** runc reports a task killed by signal N as exit code 128+N, like a shell. */
function toExit(raw: { code: number | null; signal: string | null }): TaskExit {
  if (raw.signal) return { code: null, signal: raw.signal };
  const code = raw.code ?? 0;
  if (code > 128) {
    const name = Object.entries(constants.signals).find(([, n]) => n === code - 128)?.[0];
    if (name) return { code: null, signal: name };
  }
  return { code, signal: null };
}

/** Waits (briefly) for a stream someone is reading to deliver its last bytes. */
function drained(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed || !stream.readableFlowing) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, STREAM_DRAIN_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    stream.once("end", done);
    stream.once("close", done);
  });
}
