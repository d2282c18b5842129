import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readFile, readlink } from "node:fs/promises";
import { bashScript } from "./bash-script.ts";
import { pollFor } from "./poll.ts";

/** PID 1 of the task's namespace: supervisor.sh (its header has the fd contract), run with `bash -c`. */
export const SUPERVISOR = readFileSync(fileURLToPath(new URL("./supervisor.sh", import.meta.url)), "utf8");

export interface NamespaceTools {
  setpriv: string;
  unshare: string;
  setsid: string;
  bash: string;
}

/** Checks that this machine lets us run a PID + mount namespace; returns why not otherwise. */
export function probeNamespaces(tools: NamespaceTools): { ok: true } | { ok: false; reason: string } {
  const result = spawnSync(tools.unshare, ["--pid", "--fork", "--mount-proc", tools.setsid, ...bashScript(tools.bash, "exit 0")], {
    stdio: ["ignore", "ignore", "pipe"],
    timeout: 10_000,
  });
  if (result.error) return { ok: false, reason: `unshare failed: ${result.error.message}` };
  if (result.status !== 0) return { ok: false, reason: `unshare --pid --fork --mount-proc failed: ${result.stderr.toString().trim()}` };
  return { ok: true };
}

/**
 * argv for `spawn`: the task in its own PID namespace, its own session, under the supervisor.
 * `sandbox(command)`: the argv that builds the task's own root (task-root.ts) and runs `command`
 * there, as the namespace's first program; it ends by exec-ing `command`, so the supervisor stays
 * PID 1. Without it the namespace keeps a private copy of the host's mounts, with /proc remounted.
 */
export function namespaceArgv(tools: NamespaceTools, command: string, args: string[], sandbox?: (command: string[]) => string[]): [string, string[]] {
  // pdeathsig: unshare dies with the runner; --kill-child: the namespace dies with unshare. A run
  // whose runner crashed is recovered elsewhere, so its old process must not live on.
  const supervised = [tools.setsid, ...bashScript(tools.bash, SUPERVISOR, [command, ...args])];
  const unshare = sandbox
    ? [tools.unshare, "--mount", "--pid", "--ipc", "--fork", "--propagation", "private", "--kill-child", ...sandbox(supervised)]
    : [tools.unshare, "--pid", "--fork", "--mount-proc", "--kill-child", ...supervised];
  return [tools.setpriv, ["--pdeathsig", "KILL", ...unshare]];
}

/** Host PID of the namespace's init: the one child of `unshare`. */
export function namespaceInitPid(unsharePid: number): Promise<number> {
  return pollFor(
    async () => {
      const children = await readFile(`/proc/${unsharePid}/task/${unsharePid}/children`, "utf8").catch(() => {
        throw new Error(`process ${unsharePid} (unshare) is gone`);
      });
      const first = children.trim().split(/\s+/)[0];
      return first ? Number(first) : undefined;
    },
    5_000,
    `the PID namespace of unshare ${unsharePid}`,
  );
}

/** Inode of the socket on `fd` of `pid` (`socket:[123]` → "123"). */
export async function socketInode(pid: number, fd: number): Promise<string> {
  const target = await readlink(`/proc/${pid}/fd/${fd}`);
  const match = /^socket:\[(\d+)\]$/.exec(target);
  if (!match) throw new Error(`fd ${fd} of process ${pid} is ${target}, not a socket`);
  return match[1];
}
