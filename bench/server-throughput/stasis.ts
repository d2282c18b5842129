// The server alone, driven with app.inject (no HTTP, no runner, no task process): how many triggers
// per second it accepts, how long a batchTrigger of 1,000 takes, and how many runs per second
// simulated runners can claim (long-poll route with waitMs 0) and complete.
import { createKeyring, createServer, ensureProject, generateKey, parseMasterKey, connectDatabase, migrate } from "../../server/index.ts";
import { ADMIN_TOKEN, caller, claimCompleteLoad, RUNNER_TOKEN, triggerLoad } from "./load.ts";
import { measurePhase, type PhaseCpu } from "./phase-cpu.ts";
import { startReplica, type Replica } from "./replicas.ts";

export interface StasisServerOptions {
  databaseUrl: string;
  triggers: number;
  batch: number;
  runs: number;
  concurrency: number;
  runners: number;
  slots: number;
  /** Server replicas on the database: this thread's, and replicas − 1 worker threads (each its own event loop). */
  replicas: number;
  /** Triggers, then claims and completions, of this many runs before anything is measured. */
  warmup: number;
  /** The environment has a variable: every claim takes the full path (claim.ts), not the one-statement one. */
  variables?: boolean;
}

export interface StasisServerResult {
  triggersPerSecond: number;
  batchTrigger: { items: number; ms: number; rowsWritten: number };
  claimCompletePerSecond: number;
  attemptsPerRun: { min: number; max: number };
  /** CPU per trigger and per claimed and completed run (this process + PostgreSQL). */
  cpu: { trigger: PhaseCpu; run: PhaseCpu };
}

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

/** `total` split into `parts` shares as even as whole numbers allow. */
const shares = (total: number, parts: number) => Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));

export async function benchStasisServer(options: StasisServerOptions): Promise<StasisServerResult> {
  const db = connectDatabase(options.databaseUrl, { poolMax: 10 });
  await migrate(db);
  const masterKeyHex = generateKey().toString("hex");
  const server = await createServer({ db, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, logger: false, keyring: createKeyring(parseMasterKey(masterKeyHex)) });
  const replicas: Replica[] = [];
  try {
    for (let i = 1; i < options.replicas; i++) replicas.push(await startReplica(options.databaseUrl, masterKeyHex));
    const project = await ensureProject(db, { slug: "bench" });
    const apiKey = project.keys.find((k) => k.environment === "production")!.apiKey;
    const call = caller(server.app);
    await call("/api/v1/deployments", { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(), promote: true }, apiKey);
    if (options.variables) await call("/api/v1/envvars", { variables: { BENCH_SETTING: "on" } }, apiKey);

    // Triggers, one run per request: each replica its share, `concurrency` requests in flight on each.
    const triggers = async (count: number) => {
      const [own, ...others] = shares(count, options.replicas);
      await Promise.all([triggerLoad(server.app, apiKey, own, options.concurrency), ...replicas.map((r, i) => r.run({ kind: "triggers", apiKey, count: others[i], concurrency: options.concurrency }))]);
    };
    // `runners` simulated runners, dealt round-robin to the replicas, until `expected` runs ended.
    const claimAndComplete = async (expected: number) => {
      const runnerIds: string[] = [];
      for (let r = 0; r < options.runners; r++) runnerIds.push((await call("/api/v1/runner/register", { name: `bench-${r}`, capacity: options.slots, checkpoints: false }, RUNNER_TOKEN)).runnerId);
      const dealt = (replica: number) => runnerIds.filter((_, r) => r % options.replicas === replica);
      const done = new SharedArrayBuffer(4);
      await Promise.all([
        claimCompleteLoad(server.app, dealt(0), options.slots, new Int32Array(done), expected),
        ...replicas.map((r, i) => r.run({ kind: "claim", runnerIds: dealt(i + 1), slots: options.slots, done, expected })),
      ]);
      return Atomics.load(new Int32Array(done), 0);
    };
    // Unmeasured: the same two loads, so that what follows runs on code the JIT has compiled.
    if (options.warmup > 0) {
      await triggers(options.warmup);
      await claimAndComplete(options.warmup);
    }

    const triggerPhase = await measurePhase(async () => (await triggers(options.triggers), options.triggers));
    // Clear the queue before the next phases: claim and complete what the trigger phase queued.
    await claimAndComplete(options.triggers);

    // batchTrigger: one request with `batch` items; every row must be there.
    const t0 = performance.now();
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
    const { items: completed, perSecond: claimCompletePerSecond, cpu: runCpu } = await measurePhase(() => claimAndComplete(options.runs));
    if (completed !== options.runs) throw new Error(`only ${completed} of ${options.runs} runs were claimed and completed`);
    const attempts = await db("run_attempts").select("run_id").count<{ run_id: string; count: string }[]>("* as count").groupBy("run_id");
    const counts = attempts.map((a) => Number(a.count));
    return {
      triggersPerSecond: triggerPhase.perSecond,
      batchTrigger: { items: options.batch, ms: batchMs, rowsWritten: Number(count) },
      claimCompletePerSecond,
      attemptsPerRun: { min: Math.min(...counts), max: Math.max(...counts) },
      cpu: { trigger: triggerPhase.cpu, run: runCpu },
    };
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
    await server.close();
    await db.destroy();
  }
}
