// What /proc says about the processes the harness started: descendants, criu children, RSS, fds.
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";

export interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
}

export async function listProcesses(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const m = /^(\d+) \((.*)\) (\S) (\d+)/s.exec(stat);
    if (!m || m[3] === "Z") continue;
    out.push({ pid: Number(m[1]), comm: m[2], ppid: Number(m[4]) });
  }
  return out;
}

/** PIDs of every live descendant of `root`. */
export function descendantsOf(all: ProcInfo[], root: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p.pid]);
  const found: number[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length) {
    const pid = stack.pop()!;
    found.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return found;
}

export async function cmdline(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0").join(" ");
}

/** Whether `pid` still runs: a zombie has ended, it only waits for its parent to reap it. */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** VmRSS in kB, or null when the process is gone. */
export async function rssKb(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => null);
  const m = status && /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) : null;
}

export async function openFds(pid: number): Promise<number | null> {
  return readdir(`/proc/${pid}/fd`).then((f) => f.length, () => null);
}

/** PIDs of live processes whose command line contains every one of `needles`. */
export async function processesWith(...needles: string[]): Promise<number[]> {
  const found: number[] = [];
  for (const p of await listProcesses()) {
    if (p.pid === process.pid) continue;
    const line = await cmdline(p.pid);
    if (needles.every((n) => line.includes(n))) found.push(p.pid);
  }
  return found;
}
