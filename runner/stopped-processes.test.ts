import { spawn } from "node:child_process";
import { once } from "node:events";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createStoppedProcesses, type StoppedProcess } from "./stopped-processes.ts";
import { pollFor } from "./workload/poll.ts";

/** A real OS process (stopped, as a dump leaves one) behind the TaskProcess shape the pool holds. */
const started: Array<() => void> = [];
function stoppedProcess(): StoppedProcess & { pid: number; alive: () => boolean } {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  child.kill("SIGSTOP");
  let alive = true;
  const exited = once(child, "exit").then(() => ((alive = false), { code: null, signal: "SIGKILL" }));
  started.push(() => child.kill("SIGKILL"));
  const proc = { id: `p${child.pid}`, stdout: new PassThrough(), stderr: new PassThrough(), ipc: new PassThrough(), exited, kill: async () => void (child.kill("SIGKILL"), await exited) };
  return { proc, callId: 1, calls: [], pid: child.pid!, alive: () => alive };
}
afterEach(() => started.splice(0).forEach((kill) => kill()));

describe("stopped processes", () => {
  it("hands a kept process to the one take of its location, and to no other", async () => {
    const pool = createStoppedProcesses({ maxBytes: 100 });
    const a = stoppedProcess();
    expect(pool.keep("loc-a", a, 10)).toBe(true);
    expect(pool.take("loc-b")).toBeNull();
    expect(pool.take("loc-a")?.proc).toBe(a.proc);
    expect(pool.take("loc-a")).toBeNull();
    expect(a.alive()).toBe(true);
  });

  it("kills the oldest when a newer one needs the room, and refuses one bigger than the budget", async () => {
    const pool = createStoppedProcesses({ maxBytes: 100 });
    const [a, b, c] = [stoppedProcess(), stoppedProcess(), stoppedProcess()];
    expect(pool.keep("a", a, 50)).toBe(true);
    expect(pool.keep("b", b, 40)).toBe(true);
    expect(pool.keep("c", c, 30)).toBe(true);
    await pollFor(async () => (a.alive() ? undefined : true), 5000, "the oldest to be killed");
    expect([b.alive(), c.alive()]).toEqual([true, true]);
    expect(pool.take("a")).toBeNull();
    expect(pool.keep("huge", stoppedProcess(), 101)).toBe(false);
    expect(pool.count()).toBe(2);
  });

  it("kills each after its age, on drop, and all on close; one that died is not handed out", async () => {
    const pool = createStoppedProcesses({ maxBytes: 100, maxAgeMs: 300 });
    const [aged, dropped, died] = [stoppedProcess(), stoppedProcess(), stoppedProcess()];
    pool.keep("aged", aged, 1);
    await pollFor(async () => (aged.alive() ? undefined : true), 5000, "the aged one to be killed");
    const long = createStoppedProcesses({ maxBytes: 100 });
    long.keep("dropped", dropped, 1);
    long.keep("died", died, 1);
    const closing = stoppedProcess();
    long.keep("closing", closing, 1);
    await long.drop("dropped");
    expect(dropped.alive()).toBe(false);
    process.kill(died.pid, "SIGKILL");
    await died.proc.exited;
    expect(long.take("died")).toBeNull();
    await long.close();
    expect(closing.alive()).toBe(false);
    expect(long.keep("late", stoppedProcess(), 1)).toBe(false);
  });
});
