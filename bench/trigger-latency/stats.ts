export interface LatencySummary {
  p50: number;
  p99: number;
  n: number;
}

/** Nearest-rank percentile of a sample (ms). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summarize(values: number[]): LatencySummary {
  return { p50: percentile(values, 50), p99: percentile(values, 99), n: values.length };
}

/** What one system reports: sequential latencies and a burst's throughput. */
export interface SystemResult {
  system: string;
  triggerToStart: LatencySummary;
  triggerToComplete: LatencySummary;
  /** Trigger → claimed (Stasis only): splits trigger → start into the queue hop and the runner's start. */
  triggerToClaim?: LatencySummary;
  throughput: { runs: number; seconds: number; runsPerSecond: number };
}

export interface Sample {
  start: number;
  complete: number;
  /** Trigger → the claim's transaction (runs.started_at), where the system records it. */
  claimed?: number;
}

export function toResult(system: string, samples: Sample[], burst: { runs: number; ms: number }): SystemResult {
  return {
    system,
    triggerToStart: summarize(samples.map((s) => s.start)),
    triggerToComplete: summarize(samples.map((s) => s.complete)),
    ...(samples.every((s) => s.claimed !== undefined) ? { triggerToClaim: summarize(samples.map((s) => s.claimed!)) } : {}),
    throughput: { runs: burst.runs, seconds: burst.ms / 1000, runsPerSecond: burst.runs / (burst.ms / 1000) },
  };
}
