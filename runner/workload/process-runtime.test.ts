import { execFile, spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProcessRuntime, type TaskProcess, type WorkloadRuntime } from "./index.ts";
import { pollFor } from "./poll.ts";
import { collect, createIpcClient } from "./test-support/ipc-client.ts";
import { GRAPH_SIZE, graphSum, writeStatefulTask } from "./test-support/stateful-task.ts";

const run = promisify(execFile);
const runtime = await createProcessRuntime();
if (!runtime.checkpoints.available) console.warn(`skipping CRIU tests: ${runtime.checkpoints.reason}`);

let task: Awaited<ReturnType<typeof writeStatefulTask>>;
let scratch: string;
const live: TaskProcess[] = [];

beforeAll(async () => {
  task = await writeStatefulTask();
  scratch = await mkdtemp(path.join(tmpdir(), "stasis-checkpoints-"));
});
afterAll(async () => {
  await Promise.all(live.map((p) => p.kill()));
  await rm(task.dir, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
});

async function startTask(rt: WorkloadRuntime, logFile = task.logFile) {
  const proc = await rt.start({ command: process.execPath, args: [task.script, logFile, String(GRAPH_SIZE)], cwd: task.dir, env: { PATH: process.env.PATH ?? "" } });
  live.push(proc);
  const ipc = createIpcClient(proc.ipc);
  expect(await ipc.next()).toMatchObject({ type: "ready" });
  return { proc, ipc };
}

describe("process runtime without checkpoints", () => {
  it("runs a task, reports its exit code, and refuses to checkpoint with the reason", async () => {
    const rt = await createProcessRuntime({ checkpoints: false });
    expect(rt.checkpoints).toEqual({ available: false, reason: "checkpoints turned off" });
    const { proc, ipc } = await startTask(rt);
    const out = collect(proc.stdout);
    expect(await ipc.request({ cmd: "say", text: "hi" })).toEqual({ type: "said" });
    await expect(rt.checkpoint(proc, path.join(scratch, "never"))).rejects.toThrow(/checkpoints are unavailable \(checkpoints turned off\)/);
    ipc.send({ cmd: "exit", code: 3 });
    expect(await proc.exited).toEqual({ code: 3, signal: null });
    expect(out.text()).toBe("hi\n");
  });

  it("falls back to a plain process when there is no unshare, and says why it cannot checkpoint", async () => {
    const rt = await createProcessRuntime({ tools: { unshare: "/nonexistent/unshare" } });
    expect(rt.checkpoints.available).toBe(false);
    expect(rt.checkpoints.reason).toMatch(/no PID namespace for task processes: unshare failed: .*ENOENT/);
    const { proc, ipc } = await startTask(rt);
    expect(await ipc.request({ cmd: "state" })).toMatchObject({ count: 1, graphSum: graphSum(GRAPH_SIZE) });
    await expect(rt.restore(path.join(scratch, "never"), { cwd: task.dir })).rejects.toThrow(/cannot restore: checkpoints are unavailable/);
    ipc.send({ cmd: "exit", code: 4 });
    expect(await proc.exited).toEqual({ code: 4, signal: null });
  });

  it("kill() ends the task and its exit says SIGKILL", async () => {
    const { proc } = await startTask(runtime);
    await proc.kill();
    expect(await proc.exited).toEqual({ code: null, signal: "SIGKILL" });
  });

  it("a task does not outlive a runner that crashed", async () => {
    await crashRunnerAndExpectNoTask(["start", task.script, path.join(task.dir, "orphan.log")]);
  });
});

async function crashRunnerAndExpectNoTask(args: string[]): Promise<void> {
  const runner = spawn(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "test-support/start-in-child.ts"), ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve) => runner.stdout.on("data", () => resolve()));
  expect(await processesRunning(task.script)).toBeGreaterThan(0);
  runner.kill("SIGKILL");
  await pollFor(async () => ((await processesRunning(task.script)) === 0 ? true : undefined), 10_000, "the orphaned task to die");
}

/** Live (non-zombie) processes whose command line mentions `marker`. */
async function processesRunning(marker: string): Promise<number> {
  let count = 0;
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(marker)) count++;
  }
  return count;
}

describe.skipIf(!runtime.checkpoints.available)("process runtime with CRIU", () => {
  it("restores a checkpoint in another process with its state intact and fresh pipes", async () => {
    const logFile = path.join(task.dir, "restored-elsewhere.log");
    const { proc, ipc } = await startTask(runtime, logFile);
    const before = await ipc.request({ cmd: "state" });
    expect(before).toMatchObject({ count: 1, graphSum: graphSum(GRAPH_SIZE) });
    const imageDir = path.join(scratch, "one");
    const { dumpMs, sizeBytes } = await runtime.checkpoint(proc, imageDir);
    expect(dumpMs).toBeGreaterThan(0);
    expect(sizeBytes).toBeGreaterThan(5 * 1024 * 1024);
    expect(await proc.exited).toEqual({ code: null, signal: "SIGKILL" });

    const { stdout } = await run(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "test-support/restore-in-child.ts"), imageDir, "7"], { cwd: path.resolve(import.meta.dirname, "../..") });
    const seen = JSON.parse(stdout.trim().split("\n").pop()!);
    expect(seen.state).toMatchObject({ type: "state", random: before.random, count: 2, graphSum: graphSum(GRAPH_SIZE), pid: before.pid });
    expect(seen.said).toEqual({ type: "said" });
    expect(seen.stdout).toBe("hello from the restored task\n");
    expect(seen.stderr).toContain("hello from the restored task\n");
    expect(seen.exit).toEqual({ code: 7, signal: null });
    // The O_APPEND log is one unbroken sequence across the checkpoint (growth: see the poll test).
    const lines = (await readFile(logFile, "utf8")).trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(seen.state.ticks);
    expect(lines.every((line, i) => line === `tick ${i + 1}`)).toBe(true);
  });

  it("checkpoints a restored task again and restores it once more", async () => {
    const logFile = path.join(task.dir, "twice.log");
    const { proc, ipc } = await startTask(runtime, logFile);
    const first = await ipc.request({ cmd: "state" });
    await runtime.checkpoint(proc, path.join(scratch, "twice-1"));
    const other = await createProcessRuntime({ checkpoints: true });
    const again = await other.restore(path.join(scratch, "twice-1"), { cwd: task.dir });
    live.push(again);
    const ipc2 = createIpcClient(again.ipc);
    expect(await ipc2.request({ cmd: "state" })).toMatchObject({ random: first.random, count: 2 });
    await other.checkpoint(again, path.join(scratch, "twice-2"));
    expect(await again.exited).toEqual({ code: null, signal: "SIGKILL" });
    const third = await runtime.restore(path.join(scratch, "twice-2"), { cwd: task.dir });
    live.push(third);
    const ipc3 = createIpcClient(third.ipc);
    expect(await ipc3.request({ cmd: "state" })).toMatchObject({ random: first.random, count: 3 });
    await third.kill();
    expect(await third.exited).toEqual({ code: null, signal: "SIGKILL" });
  });

  it("restores two checkpoints whose tasks had the same PID side by side", async () => {
    const a = await startTask(runtime, path.join(task.dir, "a.log"));
    const b = await startTask(runtime, path.join(task.dir, "b.log"));
    const [stateA, stateB] = [await a.ipc.request({ cmd: "state" }), await b.ipc.request({ cmd: "state" })];
    expect(stateA.pid).toBe(stateB.pid); // same PID, each in its own namespace
    await Promise.all([runtime.checkpoint(a.proc, path.join(scratch, "a")), runtime.checkpoint(b.proc, path.join(scratch, "b"))]);
    const [ra, rb] = await Promise.all([runtime.restore(path.join(scratch, "a"), { cwd: task.dir }), runtime.restore(path.join(scratch, "b"), { cwd: task.dir })]);
    live.push(ra, rb);
    const [ia, ib] = [createIpcClient(ra.ipc), createIpcClient(rb.ipc)];
    expect(await ia.request({ cmd: "state" })).toMatchObject({ random: stateA.random, pid: stateA.pid, count: 2 });
    expect(await ib.request({ cmd: "state" })).toMatchObject({ random: stateB.random, pid: stateB.pid, count: 2 });
    ia.send({ cmd: "exit", code: 0 });
    ib.send({ cmd: "exit", code: 5 });
    expect(await ra.exited).toEqual({ code: 0, signal: null });
    expect(await rb.exited).toEqual({ code: 5, signal: null });
  });

  it("a restored task does not outlive a runner that crashed", async () => {
    const { proc } = await startTask(runtime, path.join(task.dir, "orphan-restored.log"));
    await runtime.checkpoint(proc, path.join(scratch, "orphan"));
    await crashRunnerAndExpectNoTask(["restore", path.join(scratch, "orphan")]);
  });

  it("keeps an outbound TCP connection open across a checkpoint (--tcp-established)", async () => {
    const server = net.createServer((socket) => socket.on("data", (data) => socket.write(`echo:${data}\n`)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const script = path.join(task.dir, "tcp.mjs");
    await writeFile(script, [
      'import net from "node:net";',
      "const ipc = new net.Socket({ fd: 3, readable: true, writable: true });",
      `const conn = net.connect(${port}, "127.0.0.1", () => ipc.write(JSON.stringify({ type: "connected" }) + "\\n"));`,
      'conn.setEncoding("utf8");',
      'conn.on("data", (text) => ipc.write(JSON.stringify({ type: "reply", text: text.trim() }) + "\\n"));',
      'ipc.on("data", (data) => conn.write(JSON.parse(String(data)).text));',
    ].join("\n"));
    try {
      const proc = await runtime.start({ command: process.execPath, args: [script], cwd: task.dir, env: {} });
      live.push(proc);
      const ipc = createIpcClient(proc.ipc);
      expect(await ipc.next()).toEqual({ type: "connected" });
      expect(await ipc.request({ text: "one" })).toEqual({ type: "reply", text: "echo:one" });
      await runtime.checkpoint(proc, path.join(scratch, "tcp"));
      const restored = await runtime.restore(path.join(scratch, "tcp"), { cwd: task.dir });
      live.push(restored);
      expect(await createIpcClient(restored.ipc).request({ text: "two" })).toEqual({ type: "reply", text: "echo:two" });
      await restored.kill();
    } finally {
      server.close();
      server.unref();
    }
  });

  it("a failed checkpoint leaves the task running and says why", async () => {
    // A unix socket to a process outside the task's tree is something CRIU refuses to dump.
    const socketPath = path.join(task.dir, "outside.sock");
    const server = net.createServer(() => {});
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const script = path.join(task.dir, "unix.mjs");
    await writeFile(script, [
      'import net from "node:net";',
      "const ipc = new net.Socket({ fd: 3, readable: true, writable: true });",
      `net.connect(${JSON.stringify(socketPath)}, () => ipc.write(JSON.stringify({ type: "connected" }) + "\\n"));`,
      'ipc.on("data", () => ipc.write(JSON.stringify({ type: "alive" }) + "\\n"));',
    ].join("\n"));
    try {
      const proc = await runtime.start({ command: process.execPath, args: [script], cwd: task.dir, env: {} });
      live.push(proc);
      const ipc = createIpcClient(proc.ipc);
      expect(await ipc.next()).toEqual({ type: "connected" });
      await expect(runtime.checkpoint(proc, path.join(scratch, "refused"))).rejects.toThrow(/checkpoint of task .* failed: criu dump failed: .*rror/);
      expect(await ipc.request({ cmd: "ping" })).toEqual({ type: "alive" });
      await proc.kill();
    } finally {
      server.close();
    }
  });

  it("names the problem when the image dir is not a checkpoint", async () => {
    await expect(runtime.restore(path.join(scratch, "missing"), { cwd: task.dir })).rejects.toThrow(/is not a process-runtime checkpoint/);
  });

  it("a restored task's log keeps its place (polls, no sleeps)", async () => {
    const logFile = path.join(task.dir, "poll.log");
    const { proc } = await startTask(runtime, logFile);
    await pollFor(async () => ((await readFile(logFile, "utf8")).includes("tick 3\n") ? true : undefined), 5_000, "3 ticks");
    await runtime.checkpoint(proc, path.join(scratch, "poll"));
    const restored = await runtime.restore(path.join(scratch, "poll"), { cwd: task.dir });
    live.push(restored);
    const count = (await readFile(logFile, "utf8")).split("\n").length;
    await pollFor(async () => ((await readFile(logFile, "utf8")).split("\n").length > count + 2 ? true : undefined), 5_000, "ticks after restore");
    await restored.kill();
  });
});
