import { readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";

/** A process's state letter (`/proc/PID/stat`: `T` stopped, `S` sleeping, `Z` zombie…) and process group; undefined once it is gone. */
export async function processStat(pid: number | string): Promise<{ state: string; pgid: number } | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const [state, , pgid] = statFields(stat);
  return state ? { state, pgid: Number(pgid) } : undefined;
}

/** After the command name in parentheses (which may hold spaces): state, ppid, pgrp… */
const statFields = (stat: string) => stat.slice(stat.lastIndexOf(")") + 2).split(" ");
const statState = (stat: string): string | undefined => statFields(stat)[0] || undefined;

/** Blocked in read(2) on its stdin (x86-64: syscall 0 on fd 0): a guard waiting for its command. */
export async function readsStdin(pid: number | string): Promise<boolean> {
  return /^0 0x0 /.test(await readFile(`/proc/${pid}/syscall`, "utf8").catch(() => ""));
}

/**
 * PIDs of live processes whose command line contains every one of `needles` (zombies excluded).
 * Read synchronously: a scan of a busy host's /proc then takes milliseconds, not the hundreds an await
 * per process costs under load, so a test can catch a process that lives a fraction of a second.
 */
export async function processesMatching(...needles: string[]): Promise<number[]> {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = readOrEmpty(`/proc/${entry}/cmdline`);
    if (!cmdline || !needles.every((n) => cmdline.includes(n))) continue;
    if (statState(readOrEmpty(`/proc/${entry}/stat`)) === "Z") continue;
    found.push(Number(entry));
  }
  return found;
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return ""; // gone meanwhile
  }
}

/**
 * Running `criu <command>` processes whose command line mentions every one of `needles`: the program itself
 * (run through its own loader, as scripts/setup-system.sh installs it), not the guard, wrapper or script
 * that names it in its arguments.
 */
export async function criuProcesses(command: "dump" | "restore", ...needles: string[]): Promise<number[]> {
  const found: number[] = [];
  for (const pid of await processesMatching("criu", command, ...needles)) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (!/^(criu|ld-linux[^/]*)$/.test(argv[0]!.split("/").pop()!)) continue;
    const program = argv.findIndex((arg) => arg.split("/").pop() === "criu");
    if (program >= 0 && argv[program + 1] === command) found.push(pid);
  }
  return found;
}

/** What every task process's command line holds: the path of its deployment's bundle (`manifest.entry`, the builder's `index.mjs`). */
export const TASK_BUNDLE_MARK = "/index.mjs";

/** Task processes started by the runners of a test stack (their bundle lives under its state dir), with their namespace's supervisor. */
export function taskProcesses(stateDir: string): Promise<number[]> {
  return processesMatching(stateDir, TASK_BUNDLE_MARK);
}

/**
 * The state letter (`/proc/PID/stat`: `T` stopped, `S` sleeping…) of each of `pids` that belongs to a
 * task's namespace — its supervisor and the task, not the `unshare` outside it that started them.
 */
export async function namespaceStates(pids: number[]): Promise<Map<number, string>> {
  const states = new Map<number, string>();
  for (const pid of pids) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    const state = (await processStat(pid))?.state;
    if (state && !cmdline.startsWith("unshare\0")) states.set(pid, state);
  }
  return states;
}
