import { task } from "stasis/sdk";

/** When the bundle imported this module (host clock): before `ready`, so long before the run for a warm spare. */
const importedAt = Date.now();
/** Names this process among the runs' outputs (pids repeat: each task process may have its own pid namespace). */
const processId = crypto.randomUUID();

/** Does nothing but say when its code began (host clock), so the bench can measure trigger → start. */
export const noop = task({
  id: "noop",
  retry: { maxAttempts: 1 },
  run: async () => ({ startedAt: Date.now(), importedAt }),
});

/** The same with process reuse: a process that completed a run takes the next one (bench variant "stasis (reused)"). */
export const noopKept = task({
  id: "noop-kept",
  retry: { maxAttempts: 1 },
  processKeepAlive: { maxRuns: 10_000 },
  run: async () => ({ startedAt: Date.now(), importedAt, processId }),
});
