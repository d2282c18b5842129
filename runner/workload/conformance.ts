import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { pollFor } from "./poll.ts";
import { populateDumpedMemory } from "./populate-dumped-memory.ts";
import { collect, createIpcClient } from "./test-support/ipc-client.ts";
import { useTaskFixture } from "./test-support/task-fixture.ts";
import { startOutsideSocketTask } from "./test-support/outside-socket-task.ts";
import { GRAPH_SIZE, graphSum } from "./test-support/stateful-task.ts";
import type { WorkloadRuntime } from "./types.ts";

export interface WorkloadRuntimeFixture {
  runtime: WorkloadRuntime;
  /** A second, independent instance (as on another runner) that restores the first one's checkpoints. */
  another: () => Promise<WorkloadRuntime>;
  /**
   * Why this runtime's dumps cannot keep an established TCP connection (Docker's API passes CRIU no
   * --tcp-established). Then the TCP case checks the other half of the contract: the checkpoint
   * fails, says why, and the task and its connection go on.
   */
  noTcpEstablished?: string;
}

/**
 * What every workload runtime must do; one call per implementation. The checkpoint half is skipped,
 * with the runtime's own reason, when it cannot checkpoint on this machine.
 */
export function describeWorkloadRuntime(name: string, { runtime, another, noTcpEstablished }: WorkloadRuntimeFixture): void {
  const f = useTaskFixture();
  if (!runtime.checkpoints.available) console.warn(`${name}: skipping checkpoint tests: ${runtime.checkpoints.reason}`);

  describe(`workload runtime: ${name}`, () => {
    it("runs a task with its ipc, stdout and stderr, and reports its exit code", async () => {
      const { proc, ipc } = await f.start(runtime, path.join(f.dir, "plain.log"));
      const [out, err] = [collect(proc.stdout), collect(proc.stderr)];
      expect(await ipc.request({ cmd: "state" })).toMatchObject({ count: 1, graphSum: graphSum(GRAPH_SIZE) });
      expect(await ipc.request({ cmd: "say", text: "hi" })).toEqual({ type: "said" });
      ipc.send({ cmd: "exit", code: 3 });
      expect(await proc.exited).toEqual({ code: 3, signal: null });
      expect(out.text()).toBe("hi\n");
      await pollFor(() => (err.text() === "hi\n" ? true : undefined), 5_000, "stderr");
    });

    it("kill() ends the task and its exit says SIGKILL", async () => {
      const { proc } = await f.start(runtime, path.join(f.dir, "killed.log"));
      await proc.kill();
      expect(await proc.exited).toEqual({ code: null, signal: "SIGKILL" });
    });
  });

  describe.skipIf(!runtime.checkpoints.available)(`workload runtime: ${name}: checkpoints`, () => {
    it("restores in another runtime instance with state intact, fresh pipes, and the exit observed", async () => {
      const logFile = path.join(f.dir, "moved.log");
      const { proc, ipc } = await f.start(runtime, logFile);
      const before = await ipc.request({ cmd: "state" });
      const { dumpMs, sizeBytes } = await runtime.checkpoint(proc, path.join(f.scratch, "moved"));
      expect(dumpMs).toBeGreaterThan(0);
      expect(sizeBytes).toBeGreaterThan(5 * 1024 * 1024);
      expect(await proc.exited).toEqual({ code: null, signal: "SIGKILL" });
      const restored = f.track(await f.own(await another()).restore(path.join(f.scratch, "moved"), { cwd: f.dir }));
      const [out, ipc2] = [collect(restored.stdout), createIpcClient(restored.ipc)];
      const after = await ipc2.request({ cmd: "state" });
      expect(after).toMatchObject({ random: before.random, count: 2, graphSum: graphSum(GRAPH_SIZE), pid: before.pid });
      expect(await ipc2.request({ cmd: "say", text: "back" })).toEqual({ type: "said" });
      ipc2.send({ cmd: "exit", code: 9 });
      expect(await restored.exited).toEqual({ code: 9, signal: null });
      expect(out.text()).toBe("back\n");
      const lines = (await readFile(logFile, "utf8")).trim().split("\n");
      expect(lines.every((line, i) => line === `tick ${i + 1}`)).toBe(true); // O_APPEND log, unbroken
    });

    // What a runner does with a dump once the task's slot is free, before it stores it (runner/session/suspend.ts).
    it.skipIf(!runtime.settleDump)("a dump settled for storing has its memory marked, and restores in another instance with its state", async () => {
      const { proc, ipc } = await f.start(runtime, path.join(f.dir, "settled.log"));
      const before = await ipc.request({ cmd: "state" });
      const dir = path.join(f.scratch, "settled");
      await runtime.checkpoint(proc, dir);
      const unsettled = path.join(f.scratch, "settled-copy");
      await cp(dir, unsettled, { recursive: true });
      runtime.settleDump!(dir);
      // The same marks as marking the copy, and they cover the task's heap (15–20 MB of graph).
      const marks = populateDumpedMemory(unsettled);
      expect(marks.skipped).toEqual([]);
      expect(marks.pages * 4096).toBeGreaterThan(8 * 2 ** 20);
      const images = (await readdir(unsettled)).filter((name) => /^mm-\d+\.img$/.test(name));
      expect(images.length).toBeGreaterThan(0);
      for (const name of images) expect(await readFile(path.join(dir, name))).toEqual(await readFile(path.join(unsettled, name)));
      // The restore finds nothing left to mark.
      expect(populateDumpedMemory(dir)).toEqual({ vmas: 0, pages: 0, skipped: [] });
      const restored = f.track(await f.own(await another()).restore(dir, { cwd: f.dir }));
      expect(await createIpcClient(restored.ipc).request({ cmd: "state" })).toMatchObject({ random: before.random, count: 2, graphSum: graphSum(GRAPH_SIZE), pid: before.pid });
      await restored.kill();
    });

    it("checkpoints a restored task again and restores it once more", async () => {
      const logFile = path.join(f.dir, "twice.log");
      const { proc, ipc } = await f.start(runtime, logFile);
      const first = await ipc.request({ cmd: "state" });
      await runtime.checkpoint(proc, path.join(f.scratch, "twice-1"));
      const other = f.own(await another());
      const again = await other.restore(path.join(f.scratch, "twice-1"), { cwd: f.dir });
      f.track(again);
      const ipc2 = createIpcClient(again.ipc);
      expect(await ipc2.request({ cmd: "state" })).toMatchObject({ random: first.random, count: 2 });
      await other.checkpoint(again, path.join(f.scratch, "twice-2"));
      expect(await again.exited).toEqual({ code: null, signal: "SIGKILL" });
      const third = await runtime.restore(path.join(f.scratch, "twice-2"), { cwd: f.dir });
      f.track(third);
      const ipc3 = createIpcClient(third.ipc);
      expect(await ipc3.request({ cmd: "state" })).toMatchObject({ random: first.random, count: 3 });
      await third.kill();
      expect(await third.exited).toEqual({ code: null, signal: "SIGKILL" });
    });

    it("a checkpoint with leaveRunning leaves the task running, and restores elsewhere as it was at the dump", async () => {
      const { proc, ipc } = await f.start(runtime, path.join(f.dir, "left.log"));
      const first = await ipc.request({ cmd: "state" });
      const dumped = await runtime.checkpoint(proc, path.join(f.scratch, "left"), { leaveRunning: true });
      expect(dumped.sizeBytes).toBeGreaterThan(0);
      // The original goes on here: the same process, its count moving on.
      expect(await ipc.request({ cmd: "state" })).toMatchObject({ random: first.random, pid: first.pid, count: 2 });
      const other = f.own(await another());
      const copy = await other.restore(path.join(f.scratch, "left"), { cwd: f.dir });
      f.track(copy);
      // The copy continues from the dump, not from where the original is now.
      expect(await createIpcClient(copy.ipc).request({ cmd: "state" })).toMatchObject({ random: first.random, count: 2 });
      await Promise.all([proc.kill(), copy.kill()]);
    });

    it("restores two checkpoints whose tasks had the same PID side by side", async () => {
      // In a container the task's PID also counts its relay's threads, which Node starts when it will:
      // tasks are started until two share a PID (they take a handful of values, so a few suffice).
      type Started = Awaited<ReturnType<typeof f.start>> & { state: { pid: number; random: number } };
      const started: Started[] = [];
      let pair: [Started, Started] | undefined;
      for (let n = 0; !pair && n < 12; n++) {
        const task = await f.start(runtime, path.join(f.dir, `same-pid-${n}.log`));
        const next = { ...task, state: await task.ipc.request({ cmd: "state" }) } as Started;
        const twin = started.find((s) => s.state.pid === next.state.pid);
        started.push(next);
        if (twin) pair = [twin, next];
      }
      await Promise.all(started.filter((s) => !pair?.includes(s)).map((s) => s.proc.kill()));
      expect(pair, `no two of ${started.length} tasks shared a PID: ${started.map((s) => s.state.pid).join(", ")}`).toBeDefined();
      const [a, b] = pair!;
      const [stateA, stateB] = [a.state, b.state];
      expect(stateA.pid).toBe(stateB.pid); // same PID, each in its own namespace
      await Promise.all([runtime.checkpoint(a.proc, path.join(f.scratch, "a")), runtime.checkpoint(b.proc, path.join(f.scratch, "b"))]);
      const [ra, rb] = await Promise.all([runtime.restore(path.join(f.scratch, "a"), { cwd: f.dir }), runtime.restore(path.join(f.scratch, "b"), { cwd: f.dir })]);
      f.track(ra); f.track(rb);
      const [ia, ib] = [createIpcClient(ra.ipc), createIpcClient(rb.ipc)];
      expect(await ia.request({ cmd: "state" })).toMatchObject({ random: stateA.random, pid: stateA.pid, count: 2 });
      expect(await ib.request({ cmd: "state" })).toMatchObject({ random: stateB.random, pid: stateB.pid, count: 2 });
      ia.send({ cmd: "exit", code: 0 });
      ib.send({ cmd: "exit", code: 5 });
      expect(await ra.exited).toEqual({ code: 0, signal: null });
      expect(await rb.exited).toEqual({ code: 5, signal: null });
    });

    it(noTcpEstablished ? `refuses to checkpoint a task with an outbound TCP connection, which goes on (${noTcpEstablished})` : "keeps an outbound TCP connection open across a checkpoint (--tcp-established)", async () => {
      const server = net.createServer((socket) => socket.on("data", (data) => socket.write(`echo:${data}\n`)));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as net.AddressInfo).port;
      const script = path.join(f.dir, "tcp.mjs");
      await writeFile(script, [
        'import net from "node:net";',
        "const ipc = new net.Socket({ fd: 3, readable: true, writable: true });",
        `const conn = net.connect(${port}, "127.0.0.1", () => ipc.write(JSON.stringify({ type: "connected" }) + "\\n"));`,
        'conn.setEncoding("utf8");',
        'conn.on("data", (text) => ipc.write(JSON.stringify({ type: "reply", text: text.trim() }) + "\\n"));',
        'ipc.on("data", (data) => conn.write(JSON.parse(String(data)).text));',
      ].join("\n"));
      try {
        const proc = await runtime.start({ command: process.execPath, args: [script], cwd: f.dir, env: {} });
        f.track(proc);
        const ipc = createIpcClient(proc.ipc);
        expect(await ipc.next()).toEqual({ type: "connected" });
        expect(await ipc.request({ text: "one" })).toEqual({ type: "reply", text: "echo:one" });
        if (noTcpEstablished) {
          await expect(runtime.checkpoint(proc, path.join(f.scratch, "tcp"))).rejects.toThrow(/checkpoint of task .* failed: .*tcp-established/);
          expect(await ipc.request({ text: "still" })).toEqual({ type: "reply", text: "echo:still" });
          return await proc.kill();
        }
        await runtime.checkpoint(proc, path.join(f.scratch, "tcp"));
        const restored = await runtime.restore(path.join(f.scratch, "tcp"), { cwd: f.dir });
        f.track(restored);
        expect(await createIpcClient(restored.ipc).request({ text: "two" })).toEqual({ type: "reply", text: "echo:two" });
        await restored.kill();
      } finally {
        server.close();
        server.unref();
      }
    });

    it("a failed checkpoint leaves the task running and says why", async () => {
      // A unix socket to a process outside the task's tree is something CRIU refuses to dump.
      const { proc, ipc, close } = await startOutsideSocketTask(f, runtime);
      try {
        expect(await ipc.next()).toEqual({ type: "connected" });
        await expect(runtime.checkpoint(proc, path.join(f.scratch, "refused"))).rejects.toThrow(/checkpoint of task .* failed: criu dump failed: .*rror/);
        expect(await ipc.request({ cmd: "ping" })).toEqual({ type: "alive" });
        await proc.kill();
      } finally {
        close();
      }
    });

    it("names the problem when the image dir is not a checkpoint", async () => {
      await expect(runtime.restore(path.join(f.scratch, "missing"), { cwd: f.dir })).rejects.toThrow(/checkpoint/);
    });

    it("a restored task's log keeps its place (polls, no sleeps)", async () => {
      const logFile = path.join(f.dir, "poll.log");
      const { proc } = await f.start(runtime, logFile);
      await pollFor(async () => ((await readFile(logFile, "utf8")).includes("tick 3\n") ? true : undefined), 5_000, "3 ticks");
      await runtime.checkpoint(proc, path.join(f.scratch, "poll"));
      const restored = await runtime.restore(path.join(f.scratch, "poll"), { cwd: f.dir });
      f.track(restored);
      const count = (await readFile(logFile, "utf8")).split("\n").length;
      await pollFor(async () => ((await readFile(logFile, "utf8")).split("\n").length > count + 2 ? true : undefined), 5_000, "ticks after restore");
      await restored.kill();
    });
  });
}
