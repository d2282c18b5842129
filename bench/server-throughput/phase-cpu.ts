// CPU one phase of the bench cost per item: this process (the server, or graphile-worker's client
// and worker) and every PostgreSQL process, read from /proc around the phase.
import { cpuSpent, sampleCpu } from "../trigger-latency/cpu-sample.ts";

export interface PhaseCpu {
  /** ms of this process's CPU per item. */
  processMs: number;
  /** ms of PostgreSQL's CPU (all its processes) per item. */
  postgresMs: number;
}

export function startPhaseCpu(): (items: number) => PhaseCpu {
  const ownBefore = process.cpuUsage();
  const machineBefore = sampleCpu();
  return (items) => {
    const own = process.cpuUsage(ownBefore);
    const postgres = cpuSpent(machineBefore, sampleCpu()).programs.filter(([name]) => name.startsWith("postgres")).reduce((sum, [, ms]) => sum + ms, 0);
    return { processMs: (own.user + own.system) / 1000 / items, postgresMs: postgres / items };
  };
}

export const formatPhaseCpu = (cpu: PhaseCpu) => `${cpu.processMs.toFixed(2)} + ${cpu.postgresMs.toFixed(2)} ms`;

/** Runs one phase, which says how many items it did: those items per second of wall time, and the CPU per item. */
export async function measurePhase(run: () => Promise<number>): Promise<{ items: number; perSecond: number; cpu: PhaseCpu }> {
  const cpu = startPhaseCpu();
  const t0 = performance.now();
  const items = await run();
  return { items, perSecond: items / ((performance.now() - t0) / 1000), cpu: cpu(items) };
}
