import { describe, expect, it } from "vitest";
import { isLeaseGone, LeaseGoneError, retryCall } from "./retry-call.ts";
import { ServerCallError } from "./server-client.ts";

/** A call that fails with the given errors in turn, then answers "ok". */
function failing(...errors: Error[]) {
  let calls = 0;
  return {
    call: async () => {
      const error = errors[calls++];
      if (error) throw error;
      return "ok";
    },
    get calls() {
      return calls;
    },
  };
}

const fast = { baseMs: 1, maxMs: 5 };

describe("retryCall", () => {
  it("retries network errors, 5xx and 429 until the server answers", async () => {
    const c = failing(new TypeError("fetch failed"), new ServerCallError(500, "INTERNAL", "internal error"), new ServerCallError(429, "RATE", "slow down"));
    await expect(retryCall(c.call, { what: "report", giveUpAt: () => Date.now() + 5000, ...fast })).resolves.toBe("ok");
    expect(c.calls).toBe(4);
  });

  it("takes a 4xx as the server's final word", async () => {
    const c = failing(new ServerCallError(409, "LEASE_LOST", "lease lost"));
    const error = await retryCall(c.call, { what: "report", giveUpAt: () => Date.now() + 5000, ...fast }).catch((e: Error) => e);
    expect(c.calls).toBe(1);
    expect(isLeaseGone(error as Error)).toBe(true);
  });

  it("gives up with LeaseGoneError once the lease has run out, after a last try at its end", async () => {
    const end = Date.now() + 200;
    const c = failing(...Array.from({ length: 1000 }, () => new TypeError("fetch failed")));
    let lastCallAt = 0;
    const call = () => ((lastCallAt = Date.now()), c.call());
    const error = await retryCall(call, { what: "report", giveUpAt: () => end, baseMs: 10, maxMs: 20 }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(LeaseGoneError);
    expect(Date.now()).toBeGreaterThanOrEqual(end);
    // Retried meanwhile, and the last try was at the lease's end (timers on a loaded machine may fire late, never early).
    expect(c.calls).toBeGreaterThanOrEqual(2);
    expect(lastCallAt).toBeGreaterThanOrEqual(end - 5);
  });

  it("reads the lease's end again after each failure (a heartbeat moved it)", async () => {
    // The lease ends 20 ms after the first try (counted from it, not from the test's start, which a loaded machine
    // may delay past those 20 ms): the retries' sleeps (≥ 22 ms before the third try) outlast it unless it moves.
    let end = Number.POSITIVE_INFINITY;
    const c = failing(new TypeError("fetch failed"), new TypeError("fetch failed"), new TypeError("fetch failed"));
    const call = () => {
      if (end === Number.POSITIVE_INFINITY) end = Date.now() + 20;
      return c.call();
    };
    const onRetry = () => void (end = Date.now() + 1000);
    await expect(retryCall(call, { what: "report", giveUpAt: () => end, onRetry, baseMs: 15, maxMs: 30 })).resolves.toBe("ok");
    expect(c.calls).toBe(4);
  });
});
