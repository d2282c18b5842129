import type { Logger } from "pino";
import type { createLeaseClock } from "./lease-clock.ts";
import { retryCall } from "./retry-call.ts";
import type { ServerClient } from "./server-client.ts";

export interface HeartbeatLoopOptions {
  server: ServerClient;
  runnerId: () => string;
  leases: ReturnType<typeof createLeaseClock>;
  /** The leases held here now: also of runs whose end or suspend is still being reported. */
  held(): Array<{ runId: string; leaseId: string }>;
  /** The lease the runner holds for a run now (a new attempt may have been claimed under a new one). */
  leaseOf(runId: string): string | undefined;
  /** The server gave this run's lease to someone else. */
  onLost(runId: string): void;
  signal: AbortSignal;
  log: Logger;
}

/**
 * Extends every lease held here at the server's interval, so a short server outage does not cost a
 * run its lease, and stops the runs whose lease the server gave to someone else.
 */
export function createHeartbeatLoop(o: HeartbeatLoopOptions) {
  let timer: NodeJS.Timeout | null = null;
  let intervalMs = 10_000;

  async function beat(): Promise<void> {
    const held = o.held();
    const started = Date.now();
    let sentAt = started;
    try {
      // A failed beat is tried again at once (backoff) rather than at the next interval: after an outage the
      // leases are extended as soon as the server is back, before it sweeps them as expired.
      const { lost, leaseMs } = await retryCall(
        () => {
          sentAt = Date.now();
          return o.server.heartbeat({ runnerId: o.runnerId(), leases: held });
        },
        { what: "heartbeat", giveUpAt: () => started + intervalMs, signal: o.signal, maxMs: 1000 },
      );
      o.leases.leaseMs = leaseMs;
      const gone = new Set(lost);
      o.leases.renewed(held.filter((l) => !gone.has(l.runId) && o.leaseOf(l.runId) === l.leaseId).map((l) => l.runId), sentAt);
      // Only the lease this beat named: while the beat was in flight, the run's attempt may have ended and its next
      // attempt been claimed here under a new lease — an answer about the old lease must not stop the new attempt
      // (found by bench/chaos: a retried run stopped on this runner kept running, then ran again elsewhere).
      const sentLease = new Map(held.map((l) => [l.runId, l.leaseId]));
      for (const runId of lost) if (o.leaseOf(runId) === sentLease.get(runId)) o.onLost(runId);
    } catch (error) {
      o.log.warn({ err: (error as Error).message }, "heartbeat failed");
    }
  }

  return {
    start(everyMs: number): void {
      intervalMs = everyMs;
      timer = setInterval(() => void beat(), intervalMs);
    },
    stop(): void {
      if (timer) clearInterval(timer);
    },
  };
}
