import { setTimeout as delay } from "node:timers/promises";

/** Polls `probe` until it returns a value (not undefined), or throws after `timeoutMs`. */
export async function pollFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let interval = 2;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(interval);
    interval = Math.min(interval * 2, 20);
  }
}
