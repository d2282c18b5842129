import { setTimeout as delay } from "node:timers/promises";

/**
 * Polls `probe` until it returns a value (not undefined), or throws after `timeoutMs`. `nudged`: a
 * promise of the next sign that it may have changed (a file watch), which cuts the wait short.
 */
export async function pollFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string, nudged?: () => Promise<void>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let interval = 2;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    const ac = new AbortController();
    await (nudged ? Promise.race([delay(interval, undefined, { signal: ac.signal }).catch(() => {}), nudged()]) : delay(interval));
    ac.abort();
    interval = Math.min(interval * 2, 20);
  }
}
