/**
 * When each lease this runner holds runs out, by the runner's own clock: a claim starts a lease of
 * `leaseMs`, and a heartbeat the server acknowledged extends every lease it did not report lost to
 * the moment that heartbeat was *sent* plus `leaseMs` (the server counts from when it got it, which
 * is later). Retried reports give up when this passes: by then the server may have given the run
 * to another runner.
 */
export function createLeaseClock(initialLeaseMs: number) {
  let leaseMs = initialLeaseMs;
  const until = new Map<string, number>();
  return {
    set leaseMs(ms: number) {
      leaseMs = ms;
    },
    get leaseMs(): number {
      return leaseMs;
    },
    claimed(runId: string, at = Date.now()): void {
      until.set(runId, at + leaseMs);
    },
    /** A heartbeat sent at `sentAt` was acknowledged for these runs. */
    renewed(runIds: Iterable<string>, sentAt: number): void {
      for (const runId of runIds) if (until.has(runId)) until.set(runId, Math.max(until.get(runId)!, sentAt + leaseMs));
    },
    forget(runId: string): void {
      until.delete(runId);
    },
    /**
     * Epoch ms until which reports for the run are worth retrying while the server cannot be reached:
     * its lease's end plus two more lease periods. A server that was down is not a server that gave
     * the run away — a restarted server gives live leases one more period (server/sql/extend-leases.ts),
     * and one that did give it away answers LEASE_LOST, which ends the retries at once.
     */
    reportableUntil(runId: string): number {
      const until = this.validUntil(runId);
      return until === 0 ? 0 : until + 2 * leaseMs;
    },
    /** Epoch ms when the run's lease runs out; 0 for a run this runner holds no lease of. */
    validUntil(runId: string): number {
      return until.get(runId) ?? 0;
    },
  };
}

export type LeaseClock = ReturnType<typeof createLeaseClock>;
