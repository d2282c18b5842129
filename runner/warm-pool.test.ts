import { describe, expect, it } from "vitest";
import { waitFor } from "../test/support/wait-for.ts";
import { createWarmPool } from "./warm-pool.ts";
import { createProcessRuntime, type TaskProcess } from "./workload/index.ts";

const runtime = await createProcessRuntime({ checkpoints: false });
const started: TaskProcess[] = [];
// A real task-like process: idles until killed.
const start = async () => {
  const proc = await runtime.start({ command: process.execPath, args: ["-e", "setInterval(() => {}, 1000)"], cwd: process.cwd(), env: {} });
  started.push(proc);
  return proc;
};
const alive = (proc: TaskProcess) => Promise.race([proc.exited.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 50))]);

describe("warm pool", () => {
  it("hands each spare out once, refills to the spares asked for, and never more", async () => {
    let wanted = 3;
    const pool = createWarmPool({ sparesPerKey: () => wanted });
    try {
      const first = await pool.take("d1", start); // no spare yet: a fresh process, then the refill
      await waitFor("three spares", () => pool.size("d1") === 3, { timeoutMs: 60_000 });
      const taken = [first];
      for (let i = 0; i < 5; i++) taken.push(await pool.take("d1", start));
      // Never the same process twice: a process that was handed out has run (or will run) a run.
      expect(new Set(taken.map((p) => p.id)).size).toBe(taken.length);
      await waitFor("refilled", () => pool.size("d1") === 3, { timeoutMs: 60_000 });
      expect(pool.size("d1")).toBe(3);
      wanted = 1;
      const after = await pool.take("d1", start);
      expect(taken.map((p) => p.id)).not.toContain(after.id);
      // Asked for one: the refill adds none while two are left.
      expect(pool.size("d1")).toBe(2);
      for (const p of [...taken, after]) await p.kill();
    } finally {
      await pool.close();
    }
  }, 120_000);

  it("kills the least recently used deployment's spares beyond maxDeployments, and all on close", async () => {
    const pool = createWarmPool({ maxDeployments: 2 });
    const a = await pool.take("a", start);
    const before = started.length;
    await waitFor("a spare for a, started", () => pool.size("a") === 1 && started.length === before + 1, { timeoutMs: 60_000 });
    const spareOfA = started[started.length - 1];
    const b = await pool.take("b", start);
    await waitFor("a spare for b", () => pool.size("b") === 1, { timeoutMs: 60_000 });
    const c = await pool.take("c", start);
    expect(pool.size("a")).toBe(0);
    await spareOfA.exited; // killed
    await waitFor("a spare for c", () => pool.size("c") === 1, { timeoutMs: 60_000 });
    const spares = started.filter((p) => ![a, b, c, spareOfA].includes(p));
    await pool.close();
    for (const p of spares) await p.exited;
    expect(await alive(a)).toBe(true);
    for (const p of [a, b, c]) await p.kill();
  }, 120_000);
});
