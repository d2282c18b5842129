import { task, wait } from "stasis/sdk";

/** Waits `ms` and says, by the host's wall clock, when the wait began and when the code after it ran. */
export const sleeper = task({
  id: "sleeper",
  retry: { maxAttempts: 1 },
  run: async (payload: { ms: number; mb: number }) => {
    const ballast = Array.from({ length: payload.mb }, () => Buffer.alloc(1024 * 1024, 7));
    const before = Date.now();
    await wait.for({ seconds: payload.ms / 1000 });
    const after = Date.now();
    return { before, after, ballast: ballast.length };
  },
});
