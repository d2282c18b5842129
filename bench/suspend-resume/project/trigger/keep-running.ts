import { logger, task } from "stasis/sdk";

/**
 * The drain benchmark's task: builds `mb` MB of state like hold-state, then keeps running (a timer
 * every 100 ms) until `seconds` have passed; it is never waiting, so a drain must checkpoint it running.
 */
export const keepRunning = task({
  id: "keep-running",
  run: async (payload: { mb: number; seconds: number }) => {
    const half = (payload.mb * 1024 * 1024) / 2;
    const graph: Array<{ i: number; next: unknown }> = [];
    for (let i = 0; i < half / 64; i++) graph.push({ i, next: graph[i - 1] ?? null });
    const blob = Buffer.alloc(half);
    for (let i = 0; i < blob.length; i += 4) blob.writeUInt32LE((i * 2654435761) >>> 0, i);
    logger.info("state built");
    let ticks = 0;
    const until = Date.now() + payload.seconds * 1000;
    while (Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      ticks += 1;
    }
    return { ticks, check: graph.length + blob[8]! };
  },
});
