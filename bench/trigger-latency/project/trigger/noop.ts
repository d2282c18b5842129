import { task } from "stasis/sdk";

/** Does nothing but say when its code began (host clock), so the bench can measure trigger → start. */
export const noop = task({
  id: "noop",
  retry: { maxAttempts: 1 },
  run: async () => ({ startedAt: Date.now() }),
});
