// The machine's ceiling for starting task processes: a loop that only starts the deployed bundle
// the way the runner does (process runtime: its own PID namespace, the runner's Node flags and
// environment) and waits for its `ready` message on fd 3, then kills it. Nothing else: no server,
// no claim, no run. What a burst of fresh-process runs can reach at best.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { hardwareRandomFlags } from "../../runner/hardware-random.ts";
import { createProcessRuntime, DEFAULT_TASK_UID_BASE } from "../../runner/index.ts";
import { summarize, type LatencySummary } from "./stats.ts";

export interface SpawnCeiling {
  /** Which start this is: the runner's flags, the same with `--enable-source-maps` (what task processes had before), or sandboxed. */
  variant: string;
  processesPerSecond: number;
  startToReady: LatencySummary;
}

export async function spawnCeiling(options: { appDir: string; entry: string; count: number; concurrency: number; withSourceMaps?: boolean; sandboxed?: boolean }): Promise<SpawnCeiling> {
  const workDir = await mkdtemp(join(tmpdir(), "stasis-bench-spawn-"));
  const runtime = await createProcessRuntime({ checkpoints: false, workDir });
  const pkeys = spawnSync(process.execPath, ["--no-wasm-memory-protection-keys", "-e", "0"], { stdio: "ignore" }).status === 0;
  // The flags runner/session/start.ts gives a task process (before this round, with --enable-source-maps too).
  const flags = [...(options.withSourceMaps ? ["--enable-source-maps"] : []), ...(pkeys ? ["--no-wasm-memory-protection-keys"] : []), ...hardwareRandomFlags()];
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", STASIS_WORKER_MODE: "run", UV_USE_IO_URING: "0", NODE_ENV: "production" };
  // As a runner running as root starts it: its own user, in a root built from nothing (task-root.sh).
  const sandbox = options.sandboxed ? { uid: DEFAULT_TASK_UID_BASE + 999, gid: DEFAULT_TASK_UID_BASE + 999, expose: [], hide: [workDir], shared: [] } : undefined;
  const latencies: number[] = [];
  const one = async () => {
    const t0 = performance.now();
    const proc = await runtime.start({ command: process.execPath, args: [...flags, join(options.appDir, options.entry)], cwd: options.appDir, env, sandbox });
    await new Promise<void>((resolve, reject) => {
      let buffered = "";
      proc.ipc.on("data", (chunk: Buffer) => {
        buffered += chunk.toString("utf8");
        if (buffered.split("\n").some((line) => line.includes('"type":"ready"'))) resolve();
      });
      void proc.exited.then((exit) => reject(new Error(`the task process ended before it was ready: ${JSON.stringify(exit)}`)));
    });
    latencies.push(performance.now() - t0);
    await proc.kill();
  };
  try {
    await one(); // warm the page cache
    latencies.length = 0;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (next++ < options.count) await one();
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    return { variant: options.sandboxed ? "runner's flags, sandboxed as root" : options.withSourceMaps ? "with --enable-source-maps, as before" : "runner's flags", processesPerSecond: options.count / seconds, startToReady: summarize(latencies) };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
