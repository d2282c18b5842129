// The two loads of the bench, driven through one server's app.inject: triggers, one run per call,
// and simulated runners that poll (waitMs 0) and report every claimed run's end. The main thread
// runs them against its server, and each extra replica (replica-worker.ts) against its own.
import type { FastifyInstance } from "fastify";

export const RUNNER_TOKEN = "bench-runner-token-0123456789";
export const ADMIN_TOKEN = "bench-admin-token-0123456789";

/** Runs `total` calls of `one`, `concurrency` at a time. */
export async function pool(total: number, concurrency: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) await one(next++);
    }),
  );
}

export type Call = (url: string, body: unknown, key: string) => Promise<any>;

export function caller(app: FastifyInstance): Call {
  return async (url, body, key) => {
    const response = await app.inject({ method: "POST", url, headers: { authorization: `Bearer ${key}` }, payload: body as object });
    if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${response.body}`);
    return JSON.parse(response.body);
  };
}

/** `count` triggers of the `noop` task, `concurrency` calls in flight. */
export async function triggerLoad(app: FastifyInstance, apiKey: string, count: number, concurrency: number): Promise<void> {
  const call = caller(app);
  await pool(count, concurrency, async (i) => void (await call("/api/v1/tasks/noop/trigger", { payload: { i } }, apiKey)));
}

/**
 * Each of `runnerIds` polls and completes until `done` (shared by every replica: Atomics on a
 * SharedArrayBuffer) reaches `expected`, or 50 polls in a row found nothing. One batched
 * `POST /complete` per poll, as the runner's client sends ends that happen together.
 */
export async function claimCompleteLoad(app: FastifyInstance, runnerIds: string[], slots: number, done: Int32Array, expected: number): Promise<void> {
  const call = caller(app);
  await Promise.all(
    runnerIds.map(async (runnerId) => {
      let idle = 0;
      while (Atomics.load(done, 0) < expected && idle < 50) {
        const polled = await call("/api/v1/runner/poll", { runnerId, freeSlots: slots, waitMs: 0 }, RUNNER_TOKEN);
        const runs = polled.runs as Array<{ runId: string; leaseId: string }>;
        if (runs.length === 0) {
          idle++;
          continue;
        }
        idle = 0;
        const ended = await call("/api/v1/runner/complete", { items: runs.map((r) => ({ runId: r.runId, leaseId: r.leaseId, result: { ok: true, output: null } })) }, RUNNER_TOKEN);
        Atomics.add(done, 0, (ended.results as Array<{ ok: boolean }>).filter((r) => r.ok).length);
      }
    }),
  );
}
