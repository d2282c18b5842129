// Stasis: the server and one in-process runner on the given database; a no-op task run in its own
// process per run (the platform's isolation), checkpoints off (nothing waits).
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { startLocalStack } from "../../cli/local-stack.ts";
import { canSandboxTasks, createImageCache } from "../../runner/index.ts";
import { spawnCeiling, type SpawnCeiling } from "./spawn-ceiling.ts";
import { toResult, type Sample, type SystemResult } from "./stats.ts";

export interface BenchOptions {
  databaseUrl: string;
  stateDir: string;
  runs: number;
  burst: number;
  capacity: number;
  /** The runner's default: spare, never-used task processes per recent deployment. Else none (`warmProcesses: 0`): a fresh process per run. */
  warm?: boolean;
  /** Runs of the task with processKeepAlive: a process that completed a run takes the next one. */
  reuse?: boolean;
  /** Pause between the sequential runs (ms): a run that comes while the last one's spare is still starting waits for it. */
  gapMs?: number;
  /** Also measure the machine's ceiling for starting the task process (spawn-ceiling.ts), before the runs. */
  ceiling?: boolean;
}

const PROJECT = join(import.meta.dirname, "project");

export async function benchStasis(options: BenchOptions): Promise<SystemResult & { ceilings?: SpawnCeiling[] }> {
  const stack = await startLocalStack({ stateDir: options.stateDir, databaseUrl: options.databaseUrl, runners: 1, capacity: options.capacity, checkpoints: false, warmProcesses: options.warm ? undefined : 0 });
  try {
    const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(stack.apiUrl, stack.adminToken, "POST", "/api/v1/admin/projects", { slug: "bench" });
    const apiKey = created.environments.find((e) => e.environment === "production")!.apiKey;
    await deployProject({ projectDir: PROJECT, apiUrl: stack.apiUrl, apiKey, store: createLayoutImageStore(stack.dirs.images), promote: true, withRuntime: false });

    const trigger = (count: number) =>
      callStasisApi<{ runs: Array<{ id: string }> }>(stack.apiUrl, apiKey, "POST", "/api/v1/tasks/batch", { items: Array.from({ length: count }, () => ({ task: options.reuse ? "noop-kept" : "noop", payload: null })) }).then((r) => r.runs.map((run) => run.id));

    // Completion as the server recorded it (completed_at), read straight from the database so
    // watching does not load the API; polled every 2 ms. The poll only counts (an index-only look at
    // the ids) and the rows are read once at the end: reading every finished row of a 1,000-run
    // burst every 2 ms took a core of this 2-core machine away from the runs it measured.
    const finished = async (ids: string[]) => {
      for (;;) {
        const [{ count }] = await stack.db("runs").whereIn("id", ids).whereIn("status", ["COMPLETED", "FAILED", "TIMED_OUT", "CANCELED"]).count<Array<{ count: string }>>("* as count");
        if (Number(count) === ids.length) {
          const rows = await stack.db("runs").whereIn("id", ids).select("status", "output", "completed_at", "started_at");
          const failed = rows.find((r) => r.status !== "COMPLETED");
          if (failed) throw new Error(`a bench run ended ${failed.status}`);
          return rows as Array<{ output: { startedAt: number }; completed_at: Date; started_at: Date }>;
        }
        await delay(ids.length > 1 ? 10 : 2);
      }
    };

    for (let i = 0; i < 3; i++) await finished(await trigger(1)); // warm-up: unpack the image, warm caches
    let ceilings: SpawnCeiling[] | undefined;
    if (options.ceiling) {
      const deployment = await stack.db("deployments").where({ status: "DEPLOYED" }).first("id", "version", "image_ref", "image_digest", "manifest");
      const appDir = await createImageCache(stack.dirs.imageCache)({ id: deployment.id, version: deployment.version, imageRef: deployment.image_ref, imageDigest: deployment.image_digest, manifest: deployment.manifest });
      const count = Math.max(options.burst, 50);
      ceilings = [];
      for (const withSourceMaps of [false, true]) ceilings.push(await spawnCeiling({ appDir, entry: deployment.manifest.entry, count, concurrency: options.capacity, withSourceMaps }));
      if (canSandboxTasks()) ceilings.push(await spawnCeiling({ appDir, entry: deployment.manifest.entry, count, concurrency: options.capacity, sandboxed: true }));
    }
    const samples: Sample[] = [];
    for (let i = 0; i < options.runs; i++) {
      // The gap before each run, the first too: the warm-up's last run must not be the measured run's neighbour.
      if (options.gapMs) await delay(options.gapMs);
      const t0 = Date.now();
      const [row] = await finished(await trigger(1));
      samples.push({ start: row.output.startedAt - t0, complete: row.completed_at.getTime() - t0, claimed: row.started_at.getTime() - t0 });
    }
    const t0 = Date.now();
    const rows = await finished(await trigger(options.burst));
    const last = Math.max(...rows.map((r) => r.completed_at.getTime()));
    return { ...toResult(options.reuse ? "stasis (reused)" : options.warm ? "stasis (warm spare)" : "stasis", samples, { runs: options.burst, ms: last - t0 }), ...(ceilings ? { ceilings } : {}) };
  } finally {
    await stack.stop();
  }
}
