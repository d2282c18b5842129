// The server alone, driven with app.inject (no HTTP, no runner, no task process): how many triggers
// per second it accepts, how long a batchTrigger of 1,000 takes, and how many runs per second
// simulated runners can claim (long-poll route with waitMs 0) and complete.
import { createKeyring, createServer, ensureProject, generateKey, parseMasterKey, connectDatabase, migrate } from "../../server/index.ts";
import { startPhaseCpu, type PhaseCpu } from "./phase-cpu.ts";

export interface StasisServerOptions {
  databaseUrl: string;
  triggers: number;
  batch: number;
  runs: number;
  concurrency: number;
  runners: number;
  slots: number;
}

export interface StasisServerResult {
  triggersPerSecond: number;
  batchTrigger: { items: number; ms: number; rowsWritten: number };
  claimCompletePerSecond: number;
  attemptsPerRun: { min: number; max: number };
  /** CPU per trigger and per claimed and completed run (this process + PostgreSQL). */
  cpu: { trigger: PhaseCpu; run: PhaseCpu };
}

const RUNNER_TOKEN = "bench-runner-token-0123456789";
const ADMIN_TOKEN = "bench-admin-token-0123456789";
/** Items per batch when queuing for the claim phase (the smallest batch limit any version had). */
const QUEUE_CHUNK = 500;
const DIGEST = `sha256:${"a".repeat(64)}`;

function manifest() {
  return {
    schemaVersion: 1,
    project: "bench",
    entry: "index.mjs",
    tasks: [
      {
        id: "noop",
        filePath: "trigger/noop.ts",
        exportName: "noop",
        retry: { maxAttempts: 3, factor: 2, minTimeoutInMs: 1000, maxTimeoutInMs: 60_000, randomize: false },
        machine: { preset: "small-1x", cpu: 0.5, memory: 512 },
        queue: { name: "noop" },
      },
    ],
    externals: [],
    sdkVersion: "0.1.0",
    nodeVersion: "20.0.0",
    contentHash: "0".repeat(64),
  };
}

/** Runs `total` calls of `one`, `concurrency` at a time. */
async function pool(total: number, concurrency: number, one: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) await one(next++);
    }),
  );
}

export async function benchStasisServer(options: StasisServerOptions): Promise<StasisServerResult> {
  const db = connectDatabase(options.databaseUrl, { poolMax: 10 });
  await migrate(db);
  const server = await createServer({ db, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, logger: false, keyring: createKeyring(parseMasterKey(generateKey().toString("hex"))) });
  try {
    const project = await ensureProject(db, { slug: "bench" });
    const apiKey = project.keys.find((k) => k.environment === "production")!.apiKey;
    const call = async (url: string, body: unknown, key: string) => {
      const response = await server.app.inject({ method: "POST", url, headers: { authorization: `Bearer ${key}` }, payload: body as object });
      if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${response.body}`);
      return JSON.parse(response.body);
    };
    await call("/api/v1/deployments", { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(), promote: true }, apiKey);

    // Triggers, one run per request, `concurrency` requests in flight.
    let cpu = startPhaseCpu();
    let t0 = performance.now();
    await pool(options.triggers, options.concurrency, async (i) => void (await call("/api/v1/tasks/noop/trigger", { payload: { i } }, apiKey)));
    const triggersPerSecond = options.triggers / ((performance.now() - t0) / 1000);
    const triggerCpu = cpu(options.triggers);

    // Clear the queue before the next phases: claim and complete what the trigger phase queued.
    let batchRoute = true;
    const claimAndComplete = async (expected: number) => {
      const runnerIds: string[] = [];
      for (let r = 0; r < options.runners; r++) runnerIds.push((await call("/api/v1/runner/register", { name: `bench-${r}`, capacity: options.slots, checkpoints: false }, RUNNER_TOKEN)).runnerId);
      let done = 0;
      let idle = 0;
      await Promise.all(
        runnerIds.map(async (runnerId) => {
          while (done < expected && idle < 50) {
            const polled = await call("/api/v1/runner/poll", { runnerId, freeSlots: options.slots, waitMs: 0 }, RUNNER_TOKEN);
            if (polled.runs.length === 0) {
              idle++;
              continue;
            }
            idle = 0;
            const runs = polled.runs as Array<{ runId: string; leaseId: string }>;
            // As the runner's client sends ends that happen together: one batched call (single calls where the server has no batch route).
            if (batchRoute) {
              const response = await server.app.inject({ method: "POST", url: "/api/v1/runner/complete", headers: { authorization: `Bearer ${RUNNER_TOKEN}` }, payload: { items: runs.map((r) => ({ runId: r.runId, leaseId: r.leaseId, result: { ok: true, output: null } })) } });
              if (response.statusCode === 200) {
                done += (JSON.parse(response.body).results as Array<{ ok: boolean }>).filter((r) => r.ok).length;
                continue;
              }
              if (response.statusCode !== 404) throw new Error(`/api/v1/runner/complete: ${response.statusCode} ${response.body}`);
              batchRoute = false;
            }
            await Promise.all(
              runs.map(async (run) => {
                await call(`/api/v1/runner/runs/${run.runId}/complete`, { leaseId: run.leaseId, result: { ok: true, output: null } }, RUNNER_TOKEN);
                done++;
              }),
            );
          }
        }),
      );
      return done;
    };
    await claimAndComplete(options.triggers);

    // batchTrigger: one request with `batch` items; every row must be there.
    t0 = performance.now();
    const batch = await call("/api/v1/tasks/batch", { items: Array.from({ length: options.batch }, (_, i) => ({ task: "noop", payload: { i } })) }, apiKey);
    const batchMs = performance.now() - t0;
    const ids = (batch.runs as Array<{ id: string }>).map((r) => r.id);
    const [{ count }] = await db("runs").whereIn("id", ids).count<{ count: string }[]>("* as count");
    await claimAndComplete(options.batch);

    // Claim + complete: `runs` queued runs, `runners` simulated runners with `slots` free slots each.
    for (let queued = 0; queued < options.runs; queued += QUEUE_CHUNK) {
      const n = Math.min(QUEUE_CHUNK, options.runs - queued);
      await call("/api/v1/tasks/batch", { items: Array.from({ length: n }, (_, i) => ({ task: "noop", payload: { i } })) }, apiKey);
    }
    cpu = startPhaseCpu();
    t0 = performance.now();
    const completed = await claimAndComplete(options.runs);
    const claimCompletePerSecond = completed / ((performance.now() - t0) / 1000);
    const runCpu = cpu(completed);
    if (completed !== options.runs) throw new Error(`only ${completed} of ${options.runs} runs were claimed and completed`);
    const attempts = await db("run_attempts").select("run_id").count<{ run_id: string; count: string }[]>("* as count").groupBy("run_id");
    const counts = attempts.map((a) => Number(a.count));
    return {
      triggersPerSecond,
      batchTrigger: { items: options.batch, ms: batchMs, rowsWritten: Number(count) },
      claimCompletePerSecond,
      attemptsPerRun: { min: Math.min(...counts), max: Math.max(...counts) },
      cpu: { trigger: triggerCpu, run: runCpu },
    };
  } finally {
    await server.close();
    await db.destroy();
  }
}
