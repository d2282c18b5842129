// graphile-worker 0.17.3 on the same PostgreSQL server (its own database), as the peer: jobs added
// per second (addJob, one job per call, `concurrency` calls in flight) and jobs worked per second
// (an in-process worker with `concurrency` working the whole queue until the last completes).
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";
import { measurePhase, startPhaseCpu, type PhaseCpu } from "./phase-cpu.ts";

const silent = new Logger(() => () => {});

export interface GraphileOptions {
  databaseUrl: string;
  triggers: number;
  runs: number;
  concurrency: number;
  /** Jobs added one by one and worked before anything is measured (as the Stasis side's warm-up). */
  warmup: number;
}

export interface GraphileResult {
  /** CPU per addJob and per job worked (this process + PostgreSQL). */
  cpu: { add: PhaseCpu; job: PhaseCpu };
  addsPerSecond: number;
  jobsPerSecond: number;
  addJobsBatchMs: number;
}

export async function benchGraphileServer(options: GraphileOptions): Promise<GraphileResult> {
  const pgPool = new pg.Pool({ connectionString: options.databaseUrl, max: options.concurrency + 2 });
  pgPool.on("error", () => {});
  const utils = await makeWorkerUtils({ pgPool, logger: silent });
  await utils.migrate();
  /** `count` addJob calls, `concurrency` in flight. */
  const addOneByOne = async (count: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (next < count) await utils.addJob("noop", { i: next++ }, { maxAttempts: 1 });
      }),
    );
  };
  /** Works the queue with an in-process worker until `total` jobs completed: ms from its start to the last one. */
  const workQueue = async (total: number) => {
    const t0 = performance.now();
    let completed = 0;
    let allDone: () => void = () => {};
    const finished = new Promise<void>((resolve) => (allDone = resolve));
    const worker = await run({ pgPool, concurrency: options.concurrency, noHandleSignals: true, logger: silent, taskList: { noop: async () => {} } });
    worker.events.on("job:complete", ({ error }) => {
      if (error) throw new Error(`a bench job failed: ${String(error)}`);
      completed++;
      if (completed === total) allDone();
    });
    await finished;
    const ms = performance.now() - t0;
    await worker.stop();
    return ms;
  };
  try {
    if (options.warmup > 0) {
      await addOneByOne(options.warmup);
      await workQueue(options.warmup);
    }
    const { perSecond: addsPerSecond, cpu: addCpu } = await measurePhase(async () => (await addOneByOne(options.triggers), options.triggers));

    const t0 = performance.now();
    await utils.addJobs(Array.from({ length: options.runs }, (_, i) => ({ identifier: "noop", payload: { i }, maxAttempts: 1 })));
    const addJobsBatchMs = performance.now() - t0;

    // Work the whole queue (the jobs added one by one and the batch), all due before the worker starts.
    const total = options.triggers + options.runs;
    const cpu = startPhaseCpu();
    const jobsPerSecond = total / ((await workQueue(total)) / 1000);
    const jobCpu = cpu(total);
    return { addsPerSecond, jobsPerSecond, addJobsBatchMs, cpu: { add: addCpu, job: jobCpu } };
  } finally {
    await utils.release();
    await pgPool.end();
  }
}
