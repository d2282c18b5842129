import { chmod, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createProcessRuntime } from "./index.ts";
import { collect, createIpcClient } from "./test-support/ipc-client.ts";
import { GRAPH_SIZE, graphSum } from "./test-support/stateful-task.ts";
import { useTaskFixture } from "./test-support/task-fixture.ts";
import type { TaskSandbox } from "./task-sandbox.ts";

const asRoot = process.getuid?.() === 0;
const runtime = await createProcessRuntime();
const f = useTaskFixture();
f.own(runtime);
const UID = 1_000_000_000 + 424_242;

describe.skipIf(!asRoot || !runtime.checkpoints.available)("a sandboxed task (process runtime)", () => {
  it("runs as its user, is dumped and restored by CRIU, and keeps its user, state and /tmp", async () => {
    // The task's dir is the fixture's (0700 under /tmp): bound read-only, readable by the task's user.
    await chmod(f.dir, 0o755);
    const sandbox: TaskSandbox = { uid: UID, gid: UID, expose: [path.dirname(process.execPath)], hide: [f.scratch], shared: [] };
    // Its log goes to its own /tmp, which its checkpoint carries.
    const logFile = "/tmp/sandboxed.log";
    const proc = f.track(await runtime.start({ command: process.execPath, args: [f.script, logFile, String(GRAPH_SIZE)], cwd: f.dir, env: { PATH: process.env.PATH ?? "", HOME: "/tmp" }, sandbox }));
    const ipc = createIpcClient(proc.ipc);
    const err = collect(proc.stderr);
    expect(await ipc.next().catch((e: Error) => e.message + err.text())).toMatchObject({ type: "ready" });
    expect((await processesOf(UID)).length).toBeGreaterThan(0);
    const before = await ipc.request({ cmd: "state" });
    const started = performance.now();
    const { dumpMs } = await runtime.checkpoint(proc, path.join(f.scratch, "sandboxed"));
    console.log(`dump ${dumpMs} ms (call ${Math.round(performance.now() - started)} ms)`);
    const restoreStarted = performance.now();
    const restored = f.track(await runtime.restore(path.join(f.scratch, "sandboxed"), { cwd: f.dir }));
    const ipc2 = createIpcClient(restored.ipc);
    const after = await ipc2.request({ cmd: "state" });
    console.log(`restore ${Math.round(performance.now() - restoreStarted)} ms`);
    expect(after).toMatchObject({ random: before.random, count: 2, graphSum: graphSum(GRAPH_SIZE), pid: before.pid });
    // The restored task runs as the same user (and holds no capability).
    const tasks = await processesOf(UID);
    expect(tasks.length).toBeGreaterThan(0);
    for (const status of tasks) expect(status).toMatch(/^CapEff:\s+0+$/m);
    ipc2.send({ cmd: "exit", code: 5 });
    expect(await restored.exited).toEqual({ code: 5, signal: null });
  });
});

/** /proc/PID/status of every live process whose real uid is `uid`. */
async function processesOf(uid: number): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    if (new RegExp(`^Uid:\\s+${uid}\\s`, "m").test(status) && !/^State:\s+Z/m.test(status)) found.push(status);
  }
  return found;
}
