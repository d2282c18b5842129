import { readFile } from "node:fs/promises";

/** Whether a process with this pid exists (one owned by another user counts: signalling it is refused, not failed). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

const PF_EXITING = 0x4;

/**
 * Whether this pid is a process that still runs: not gone, not a zombie its parent has yet to reap,
 * and not already exiting. A PID namespace's init that was killed stays in exit, not yet a zombie,
 * until every other process of its namespace is reaped — forever if one of them is held in a ptrace
 * stop by a tracer that stopped answering (a `criu restore` that hung before it detached).
 */
export async function pidRunning(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (stat === undefined) return false;
  // After the command name, which may hold spaces or parens: state, ppid, pgrp, session, tty, tpgid, flags.
  const [state, , , , , , flags] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return state !== "Z" && state !== "X" && (Number(flags) & PF_EXITING) === 0;
}
