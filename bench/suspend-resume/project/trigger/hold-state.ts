import { events, task } from "stasis/sdk";

/**
 * The benchmark's task on the real platform: builds `mb` MB of state exactly like bench-task.ts
 * (half a linked object graph, half a filled Buffer), then waits for an event — always a suspend —
 * and reports wall-clock instants so the bench can time suspend, resume and cold start.
 */
export const holdState = task({
  id: "hold-state",
  run: async (payload: { mb: number }, { ctx }) => {
    const started = Date.now();
    const half = (payload.mb * 1024 * 1024) / 2;
    const graph: Array<{ i: number; next: unknown }> = [];
    for (let i = 0; i < half / 64; i++) graph.push({ i, next: graph[i - 1] ?? null });
    const blob = Buffer.alloc(half);
    for (let i = 0; i < blob.length; i += 4) blob.writeUInt32LE((i * 2654435761) >>> 0, i);
    const rss = process.memoryUsage().rss;
    const ready = Date.now();
    const waitCalled = Date.now();
    await events.waitForEvent({ event: "bench.go", filter: { runId: [ctx.runId] } });
    const resumed = Date.now();
    return { started, ready, waitCalled, resumed, rss, check: graph.length + blob[8]! };
  },
});
