import { constants } from "node:os";
import type Docker from "dockerode";
import type { ContainerLink } from "./container-link.ts";
import type { MachineLimits, TaskExit, TaskProcess } from "./types.ts";

const LAST_BYTES_MS = 2_000;

/** What the container runtime keeps about each container it handed out. */
export interface ContainerTask {
  proc: TaskProcess;
  name: string;
  link: ContainerLink;
  machine?: MachineLimits;
  readonly running: boolean;
  /** The end of the container's own output (the shim's complaints), read when it ended by itself. */
  lastWords(): string;
  /** The container's end is ours (a checkpoint): report SIGKILL, not what the engine says. */
  expectKill(expected?: boolean): void;
}

/**
 * A TaskProcess over one engine container: `exited` follows the engine's wait, then the last output
 * (the shim's connection ends after it), then the container and the link dir are removed.
 */
export function trackContainer(container: Docker.Container, name: string, link: ContainerLink, machine: MachineLimits | undefined): ContainerTask {
  let running = true;
  let killing = false;
  let lastWords = "";
  const waited = container.wait().then(
    (r: { StatusCode: number }) => r.StatusCode,
    () => 137,
  );
  const exited: Promise<TaskExit> = waited.then(async (status) => {
    running = false;
    const exit: TaskExit = killing ? { code: null, signal: "SIGKILL" } : toExit(status);
    if (!killing) await Promise.race([link.ended(), new Promise((resolve) => setTimeout(resolve, LAST_BYTES_MS).unref())]);
    // A SIGKILL that neither kill() nor a checkpoint sent, with OOM kills in the container: its memory limit.
    const note = link.exitNote();
    if (exit.signal === "SIGKILL" && !killing && machine && (note?.oomKills ?? 0) > 0) {
      exit.reason = { name: "MemoryLimitExceeded", message: `exceeded memory limit of ${machine.memory} MB` };
    }
    if (!killing && status !== 0) {
      const logs = await container.logs({ stdout: true, stderr: true, tail: 40, follow: false }).catch(() => Buffer.alloc(0));
      lastWords = logs.toString("utf8").replace(/[\x00-\x08]/g, "").trim().slice(-2000);
    }
    await container.remove({ force: true }).catch(() => {});
    await link.close();
    return exit;
  });
  const proc: TaskProcess = {
    id: name,
    stdout: link.stdout,
    stderr: link.stderr,
    ipc: link.ipc,
    exited,
    async kill() {
      if (running) {
        killing = true;
        await container.kill({ signal: "SIGKILL" }).catch(() => {});
      }
      await exited;
    },
  };
  return {
    proc,
    name,
    link,
    machine,
    expectKill: (expected = true) => void (killing = expected),
    lastWords: () => lastWords,
    get running() {
      return running;
    },
  };
}

/** The shim exits 128+N when the task was killed by signal N (and the engine says 137 for its own SIGKILL). */
function toExit(status: number): TaskExit {
  if (status > 128) {
    const name = Object.entries(constants.signals).find(([, n]) => n === status - 128)?.[0];
    if (name) return { code: null, signal: name };
  }
  return { code: status, signal: null };
}
