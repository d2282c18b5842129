// graphile-worker 0.17.3 on the same PostgreSQL server (its own database): an in-process worker
// with the same concurrency; the job handler runs in the worker's process.
import { setTimeout as delay } from "node:timers/promises";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";
import type { BenchOptions } from "./stasis.ts";
import { toResult, type Sample, type SystemResult } from "./stats.ts";

const silent = new Logger(() => () => {});

export async function benchGraphile(options: BenchOptions): Promise<SystemResult> {
  const starts = new Map<number, number>();
  const waiting = new Map<number, (at: number) => void>();
  // Our own pool, ended by us: graphile-worker leaves a pool it made itself open after stop().
  const pgPool = new pg.Pool({ connectionString: options.databaseUrl, max: options.capacity + 2 });
  pgPool.on("error", () => {});
  const utils = await makeWorkerUtils({ pgPool, logger: silent });
  await utils.migrate();
  const runner = await run({
    pgPool,
    concurrency: options.capacity,
    noHandleSignals: true,
    logger: silent,
    taskList: {
      noop: async (payload) => {
        starts.set((payload as { i: number }).i, Date.now());
      },
    },
  });
  // job:complete fires once the result is written back to the database.
  runner.events.on("job:complete", ({ job, error }) => {
    if (error) throw new Error(`a bench job failed: ${String(error)}`);
    waiting.get((job.payload as { i: number }).i)?.(Date.now());
  });
  let next = 0;
  const done = (i: number) => new Promise<number>((resolve) => waiting.set(i, resolve));
  try {
    for (let w = 0; w < 3; w++) {
      const i = next++;
      const completed = done(i);
      await utils.addJob("noop", { i }, { maxAttempts: 1 });
      await completed;
    }
    const samples: Sample[] = [];
    for (let n = 0; n < options.runs; n++) {
      const i = next++;
      const completed = done(i);
      const t0 = Date.now();
      await utils.addJob("noop", { i }, { maxAttempts: 1 });
      const at = await completed;
      samples.push({ start: starts.get(i)! - t0, complete: at - t0 });
      if (options.gapMs) await delay(options.gapMs);
    }
    const ids = Array.from({ length: options.burst }, () => next++);
    const all = Promise.all(ids.map(done));
    const t0 = Date.now();
    await utils.addJobs(ids.map((i) => ({ identifier: "noop", payload: { i }, maxAttempts: 1 })));
    const last = Math.max(...(await all));
    return toResult("graphile-worker", samples, { runs: options.burst, ms: last - t0 });
  } finally {
    await runner.stop();
    await utils.release();
    await pgPool.end();
  }
}
