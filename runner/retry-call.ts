import { ServerCallError } from "./server-client.ts";

export interface RetryOptions {
  /** What is being reported, for the warning logged on each failed try. */
  what: string;
  /**
   * When to stop trying (epoch ms, by this runner's clock): for a call made under a lease, the
   * moment that lease runs out unless a heartbeat extends it — read again after every failure.
   */
  giveUpAt: () => number;
  onRetry?: (error: Error, delayMs: number) => void;
  /** Aborting stops the retries (the runner is closing). */
  signal?: AbortSignal;
  baseMs?: number;
  maxMs?: number;
}

/** The lease this call was made under is gone: the server gave the run to someone else, or it ran out by our own clock. */
export class LeaseGoneError extends Error {
  override name = "LeaseGoneError";
  readonly code = "LEASE_GONE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * A try worth repeating: the server was unreachable, answered slowly (our per-call timeout), was
 * overloaded (429) or failed inside (5xx — its database is down, say). Any other answer (4xx) is the
 * server's final word on this call.
 */
export function isRetryable(error: Error): boolean {
  if (error instanceof ServerCallError) return error.status >= 500 || error.status === 429;
  return true; // fetch failed, connection reset, timed out, a proxy's non-JSON answer
}

/** The server says the lease this call carries is not (or no longer) the run's: stop, someone else has the run. */
export function isLeaseGone(error: Error): boolean {
  if (error instanceof LeaseGoneError) return true;
  return error instanceof ServerCallError && (error.code === "LEASE_LOST" || error.status === 404);
}

/**
 * The one retry loop behind every runner → server call that reports something: exponential backoff
 * with jitter (half the step at random, so runners that lost the server together do not come back in step) until the
 * call succeeds, the server refuses it for good (4xx), or `giveUpAt` passes. Calls retried this way
 * must be idempotent on the server (each carries its lease, and the server answers a repeat of a
 * call it already applied as it answered the first).
 */
export async function retryCall<T>(call: () => Promise<T>, options: RetryOptions): Promise<T> {
  const baseMs = options.baseMs ?? 100;
  const maxMs = options.maxMs ?? 2000;
  for (let failures = 0; ; failures++) {
    try {
      return await call();
    } catch (thrown) {
      const error = thrown instanceof Error ? thrown : new Error(String(thrown));
      if (!isRetryable(error) || options.signal?.aborted) throw error;
      const left = options.giveUpAt() - Date.now();
      if (left <= 0) throw new LeaseGoneError(`${options.what}: gave up: its deadline (the lease's end) passed while the server could not be reached (${error.message})`, { cause: error });
      const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(failures, 16));
      // One last try right at the end of the lease rather than none.
      const delayMs = Math.min(left, Math.round(ceiling / 2 + Math.random() * (ceiling / 2)));
      options.onRetry?.(error, delayMs);
      await sleep(delayMs, options.signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
