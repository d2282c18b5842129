// CPU time on this machine, read from /proc: the whole machine's busy time and each live process's
// time summed by program name. Processes that exit between two samples are not counted.
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second in /proc (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

export interface CpuSample {
  /** Busy time of all cores so far (user, nice, system, irq, softirq, steal), in ms. */
  machineMs: number;
  /** User + system time of every live process, summed by program name, in ms. */
  byProgram: Map<string, number>;
}

export function sampleCpu(): CpuSample {
  const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.map(Number);
  const byProgram = new Map<string, number>();
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const { name, ms } = processCpu(Number(pid));
      byProgram.set(name, (byProgram.get(name) ?? 0) + ms);
    } catch {
      // gone meanwhile
    }
  }
  return { machineMs: ticksToMs(user + nice + system + irq + softirq + steal), byProgram };
}

/** What was spent between two samples: the machine's total and the programs that spent any, most first. */
export function cpuSpent(before: CpuSample, after: CpuSample): { machineMs: number; programs: Array<[string, number]> } {
  const programs = [...after.byProgram]
    .map(([name, ms]): [string, number] => [name, ms - (before.byProgram.get(name) ?? 0)])
    .filter(([, ms]) => ms > 0)
    .sort((a, b) => b[1] - a[1]);
  return { machineMs: after.machineMs - before.machineMs, programs };
}

/** One process's program name and user + system CPU so far, in ms (throws when it is gone). */
export function processCpu(pid: number): { name: string; ms: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), ms: ticksToMs(Number(after[11]) + Number(after[12])) };
}

function ticksToMs(ticks: number): number {
  return (ticks * 1000) / TICKS_PER_SECOND;
}
