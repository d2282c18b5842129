import { describe, expect, it } from "vitest";
import { waitFor } from "../test/support/wait-for.ts";
import { readLines } from "./line-reader.ts";
import { createWarmPool } from "./warm-pool.ts";
import { createProcessRuntime, type TaskProcess } from "./workload/index.ts";

const runtime = await createProcessRuntime({ checkpoints: false });
const started: TaskProcess[] = [];
// A real task-like process: says ready on fd 3 (as the worker does), echoes what it reads there, idles until killed.
const TASK_LIKE = `
const { writeSync } = require("node:fs");
const net = require("node:net");
writeSync(3, JSON.stringify({ type: "log", message: "before ready" }) + "\\n" + JSON.stringify({ type: "ready" }) + "\\n" + JSON.stringify({ type: "log", message: "after ready" }) + "\\n");
new net.Socket({ fd: 3, readable: true, writable: true }).on("data", (d) => writeSync(3, "echo " + d));
setInterval(() => {}, 1000);
`;
const start = async () => {
  const proc = await runtime.start({ command: process.execPath, args: ["-e", TASK_LIKE], cwd: process.cwd(), env: {} });
  started.push(proc);
  return proc;
};
const alive = (proc: TaskProcess) => Promise.race([proc.exited.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 50))]);

describe("warm pool", () => {
  it("keeps more spares while takes find none ready, up to the spares asked for, and hands each out once", async () => {
    let wanted = 3;
    const pool = createWarmPool({ sparesPerKey: () => wanted });
    try {
      const first = await pool.take("d1", start); // no spare yet: a fresh process, then the refill
      expect(first.ready).toBe(false);
      await waitFor("a ready spare", () => pool.readySize("d1") === 1, { timeoutMs: 60_000 });
      const taken = [first.proc, (await pool.take("d1", start)).proc];
      // At once: the next spare is still booting, so the key keeps two from now on.
      taken.push((await pool.take("d1", start)).proc);
      await waitFor("two ready spares", () => pool.readySize("d1") === 2, { timeoutMs: 60_000 });
      for (let i = 0; i < 2; i++) {
        const next = await pool.take("d1", start);
        expect(next.ready).toBe(true);
        taken.push(next.proc);
      }
      // None ready again: four wanted, three allowed.
      taken.push((await pool.take("d1", start)).proc);
      await waitFor("three ready spares", () => pool.readySize("d1") === 3, { timeoutMs: 60_000 });
      expect(pool.size("d1")).toBe(3);
      // Never the same process twice: a process that was handed out has run (or will run) a run.
      expect(new Set(taken.map((p) => p.id)).size).toBe(taken.length);
      wanted = 1;
      const after = (await pool.take("d1", start)).proc;
      expect(taken.map((p) => p.id)).not.toContain(after.id);
      // Allowed one: the refill adds none while two are left.
      expect(pool.size("d1")).toBe(2);
      for (const p of [...taken, after]) await p.kill();
    } finally {
      await pool.close();
    }
  }, 120_000);

  it("stops spares left unused down to one per key", async () => {
    // Long enough that the first of the two spares is not stopped while the second still boots on a loaded host.
    const pool = createWarmPool({ sparesPerKey: () => 3, idleMs: 3_000 });
    const before = started.length;
    try {
      const taken = [(await pool.take("k", start)).proc];
      await waitFor("a ready spare", () => pool.readySize("k") === 1, { timeoutMs: 60_000 });
      taken.push((await pool.take("k", start)).proc, (await pool.take("k", start)).proc);
      await waitFor("two ready spares", () => pool.readySize("k") === 2, { timeoutMs: 60_000 });
      await waitFor("one spare left", () => pool.size("k") === 1, { timeoutMs: 30_000 });
      const spares = started.slice(before).filter((p) => !taken.includes(p));
      // The pool lets go of a spare as it stops it; its exit is seen a moment later on a loaded host (a fixed 50 ms look
      // counted it alive once). Neither the spare kept nor another one may be gone: exactly one lives on.
      const living = async () => (await Promise.all(spares.map(alive))).filter(Boolean).length;
      await waitFor("the stopped spare's process to exit", async () => (await living()) <= 1, { timeoutMs: 15_000 });
      expect(await living()).toBe(1);
      // The one left is handed out as before.
      const next = await pool.take("k", start);
      expect(next.ready).toBe(true);
      for (const p of [...taken, next.proc]) await p.kill();
    } finally {
      await pool.close();
    }
  }, 120_000);

  it("hands a ready spare over with its channel intact: the lines around `ready` and what is sent to it later", async () => {
    const pool = createWarmPool();
    try {
      await (await pool.take("k", start)).proc.kill();
      await waitFor("a ready spare", () => pool.readySize("k") === 1, { timeoutMs: 60_000 });
      const { proc, ready } = await pool.take("k", start);
      expect(ready).toBe(true);
      const lines: string[] = [];
      readLines(proc.ipc, (line) => lines.push(line));
      proc.ipc.write("ping\n");
      await waitFor("the lines besides ready, then the echo", () => lines.includes("echo ping"), { timeoutMs: 30_000 });
      expect(lines).toEqual([JSON.stringify({ type: "log", message: "before ready" }), JSON.stringify({ type: "log", message: "after ready" }), "echo ping"]);
      await proc.kill();
    } finally {
      await pool.close();
    }
  }, 120_000);

  it("kills the least recently used deployment's spares beyond maxDeployments, and all on close", async () => {
    const pool = createWarmPool({ maxDeployments: 2 });
    const first = started.length;
    const a = (await pool.take("a", start)).proc;
    const before = started.length;
    await waitFor("a spare for a, started", () => pool.size("a") === 1 && started.length === before + 1, { timeoutMs: 60_000 });
    const spareOfA = started[started.length - 1];
    const b = (await pool.take("b", start)).proc;
    await waitFor("a spare for b", () => pool.size("b") === 1, { timeoutMs: 60_000 });
    const c = (await pool.take("c", start)).proc;
    expect(pool.size("a")).toBe(0);
    await spareOfA.exited; // killed
    await waitFor("a spare for c", () => pool.size("c") === 1, { timeoutMs: 60_000 });
    const spares = started.slice(first).filter((p) => ![a, b, c, spareOfA].includes(p));
    await pool.close();
    for (const p of spares) await p.exited;
    expect(await alive(a)).toBe(true);
    for (const p of [a, b, c]) await p.kill();
  }, 120_000);
});
