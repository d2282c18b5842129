import { RetryOptions } from "../../schemas/index.ts";

export const DEFAULT_RETRY: RetryOptions = RetryOptions.parse({});

/**
 * Delay before attempt `attempt + 1` after attempt `attempt` (1-based) failed:
 * min(max, min * factor^(attempt-1)), times a random factor in [1, 2) when `randomize`.
 */
export function retryDelayMs(retry: RetryOptions, attempt: number, random: () => number = Math.random): number {
  const jitter = retry.randomize ? 1 + random() : 1;
  const delay = retry.minTimeoutInMs * Math.pow(retry.factor, Math.max(0, attempt - 1)) * jitter;
  return Math.round(Math.min(retry.maxTimeoutInMs, delay));
}
