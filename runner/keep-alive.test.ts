import { afterAll, describe, expect, it } from "vitest";
import type { ClaimedRun } from "../schemas/index.ts";
import { createKeepAlivePool } from "./keep-alive.ts";
import { createProcessRuntime, type TaskProcess } from "./workload/index.ts";

const runtime = await createProcessRuntime({ checkpoints: false });
const started: TaskProcess[] = [];
const start = async () => {
  const proc = await runtime.start({ command: process.execPath, args: ["-e", "setInterval(() => {}, 1000)"], cwd: process.cwd(), env: {} });
  started.push(proc);
  return proc;
};
afterAll(async () => {
  await Promise.all(started.map((p) => p.kill().catch(() => {})));
});

function claim(over: { environment?: string; deployment?: string; task?: string; maxRuns?: number | null; resume?: boolean } = {}): ClaimedRun {
  const maxRuns = over.maxRuns === undefined ? 3 : over.maxRuns;
  return {
    runId: `run_${Math.random()}`,
    taskId: over.task ?? "t",
    project: "p",
    environment: over.environment ?? "development",
    env: { A: "1" },
    deployment: { id: over.deployment ?? "dep_1", manifest: { tasks: [{ id: "t", ...(maxRuns ? { processKeepAlive: { maxRuns } } : {}) }, { id: "plain" }] } },
    ...(over.resume ? { resume: { checkpointLocation: "x" } } : {}),
  } as unknown as ClaimedRun;
}
const offer = (pool: ReturnType<typeof createKeepAlivePool>, c: ClaimedRun, proc: TaskProcess, runs = 1, restored = false) => pool.offer(c, proc, { runs, restored, detach: () => {} });

describe("keep-alive pool", () => {
  it("hands a kept process only to a run of the same environment, version and opted-in task, below maxRuns", async () => {
    const pool = createKeepAlivePool();
    try {
      const proc = await start();
      expect(offer(pool, claim(), proc)).toBe(true);
      expect(await pool.take(claim({ environment: "staging" }))).toBeNull();
      expect(await pool.take(claim({ deployment: "dep_2" }))).toBeNull();
      expect(await pool.take(claim({ task: "plain" }))).toBeNull();
      expect(await pool.take(claim({ resume: true }))).toBeNull();
      const taken = await pool.take(claim());
      expect(taken?.proc).toBe(proc);
      expect(taken?.runs).toBe(1);
      // Handed out once.
      expect(await pool.take(claim())).toBeNull();
      // At maxRuns, after a restore, or for a task that did not opt in: not kept.
      expect(offer(pool, claim(), proc, 3)).toBe(false);
      expect(offer(pool, claim(), proc, 1, true)).toBe(false);
      expect(offer(pool, claim({ maxRuns: null }), proc)).toBe(false);
      // A taker with a lower maxRuns than the process has run: killed, not handed out.
      expect(offer(pool, claim({ maxRuns: 5 }), proc, 3)).toBe(true);
      expect(await pool.take(claim({ maxRuns: 3 }))).toBeNull();
      await proc.exited;
    } finally {
      await pool.close();
    }
  }, 60_000);

  it("lets claims wait for a process being released, and gives it to exactly one of them", async () => {
    const pool = createKeepAlivePool();
    try {
      const proc = await start();
      const done = pool.releasing(claim(), false);
      const takes = [pool.take(claim()), pool.take(claim())];
      expect(offer(pool, claim(), proc)).toBe(true);
      done();
      const got = await Promise.all(takes);
      expect(got.filter((g) => g?.proc === proc)).toHaveLength(1);
      expect(got.filter((g) => g === null)).toHaveLength(1);
    } finally {
      await pool.close();
    }
  }, 60_000);
});
