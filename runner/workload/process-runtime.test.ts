import { execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { describeWorkloadRuntime } from "./conformance.ts";
import { createProcessRuntime } from "./index.ts";
import { pidRunning } from "./pid-alive.ts";
import { pollFor } from "./poll.ts";
import type { TaskProcess } from "./types.ts";
import { collect, createIpcClient } from "./test-support/ipc-client.ts";
import { GRAPH_SIZE, graphSum } from "./test-support/stateful-task.ts";
import { useTaskFixture } from "./test-support/task-fixture.ts";
import { startOutsideSocketTask } from "./test-support/outside-socket-task.ts";
import { namespaceStates, processesMatching, readsStdin } from "../../test/support/processes.ts";

const run = promisify(execFile);
const runtime = await createProcessRuntime();

describeWorkloadRuntime("process", { runtime, another: () => createProcessRuntime({ checkpoints: true }) });

const f = useTaskFixture();
f.own(runtime);

describe("process runtime without checkpoints", () => {
  it("runs a task, reports its exit code, and refuses to checkpoint with the reason", async () => {
    const rt = f.own(await createProcessRuntime({ checkpoints: false }));
    expect(rt.checkpoints).toEqual({ available: false, reason: "checkpoints turned off" });
    const { proc, ipc } = await f.start(rt);
    const out = collect(proc.stdout);
    expect(await ipc.request({ cmd: "say", text: "hi" })).toEqual({ type: "said" });
    await expect(rt.checkpoint(proc, path.join(f.scratch, "never"))).rejects.toThrow(/checkpoints are unavailable \(checkpoints turned off\)/);
    ipc.send({ cmd: "exit", code: 3 });
    expect(await proc.exited).toEqual({ code: 3, signal: null });
    expect(out.text()).toBe("hi\n");
  });

  it("falls back to a plain process when there is no unshare, and says why it cannot checkpoint", async () => {
    const rt = f.own(await createProcessRuntime({ tools: { unshare: "/nonexistent/unshare" } }));
    expect(rt.checkpoints.available).toBe(false);
    expect(rt.checkpoints.reason).toMatch(/no PID namespace for task processes: unshare failed: .*ENOENT/);
    const { proc, ipc } = await f.start(rt);
    expect(await ipc.request({ cmd: "state" })).toMatchObject({ count: 1, graphSum: graphSum(GRAPH_SIZE) });
    await expect(rt.restore(path.join(f.scratch, "never"), { cwd: f.dir })).rejects.toThrow(/cannot restore: checkpoints are unavailable/);
    ipc.send({ cmd: "exit", code: 4 });
    expect(await proc.exited).toEqual({ code: 4, signal: null });
  });

  it("a task does not outlive a runner that crashed", async () => {
    await crashRunnerAndExpectNoTask(["start", f.script, path.join(f.dir, "orphan.log")]);
  });
});

async function crashRunnerAndExpectNoTask(args: string[]): Promise<void> {
  const runner = spawn(process.execPath, ["--import", "tsx", path.join(import.meta.dirname, "test-support/start-in-child.ts"), ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve) => runner.stdout.on("data", () => resolve()));
  expect(await processesRunning(f.script)).toBeGreaterThan(0);
  runner.kill("SIGKILL");
  await pollFor(async () => ((await processesRunning(f.script)) === 0 ? true : undefined), 10_000, "the orphaned task to die");
}

/** The criu guards of the runtime with `workDir` waiting for their command (criu-standby.ts): children of this process. */
async function waitingGuards(workDir: string): Promise<number[]> {
  const found: number[] = [];
  for (const child of await childrenOf(process.pid).catch(() => [] as number[])) {
    const argv = (await readFile(`/proc/${child}/cmdline`, "utf8").catch(() => "")).replace(/\0$/, "").split("\0");
    if (argv.slice(-2).join(" ") === `stasis-criu-guard ${workDir}` && (await readsStdin(child))) found.push(child);
  }
  return found;
}


/** The state letter of every process of the task whose command line holds `marker`, inside its namespace. */
const processStates = async (marker: string) => [...(await namespaceStates(await processesMatching(marker))).values()];

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
  it("restores a checkpoint in another OS process with its state intact and fresh pipes", async () => {
    const logFile = path.join(f.dir, "restored-elsewhere.log");
    const { proc, ipc } = await f.start(runtime, logFile);
    const before = await ipc.request({ cmd: "state" });
    expect(before).toMatchObject({ count: 1, graphSum: graphSum(GRAPH_SIZE) });
    const imageDir = path.join(f.scratch, "one");
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



  // After the first dump or restore a guard waits for the next (criu-standby.ts): both go through it, and a dump CRIU
  // refuses there still names why, its task going on. A runtime of its own (other runtimes of this process keep guards
  // waiting too); each step waits for its guard to wait, and sees that one used.
  it("dumps and restores through a criu guard started ahead: state intact, and a refused dump names why", async () => {
    const workDir = path.join(f.scratch, "guarded-runtime");
    const rt = await createProcessRuntime({ checkpoints: true, workDir }); // closed below, and its guard seen to end
    const others = new Set<number>();
    const nextGuard = () => pollFor(async () => (await waitingGuards(workDir)).find((pid) => !others.has(pid)), 10_000, "a guard of this runtime waiting for its command");
    try {
      const { proc, ipc } = await f.start(rt, path.join(f.dir, "through-waiting-guard.log"));
      const before = await ipc.request({ cmd: "state" });
      await rt.checkpoint(proc, path.join(f.scratch, "first-dump")); // spawns its own guard; the next one waits
      let guard = await nextGuard();
      others.add(guard);
      const restored = f.track(await rt.restore(path.join(f.scratch, "first-dump"), { cwd: f.dir }));
      // That guard now runs criu, which stays the restored tree's parent: alive, no longer reading its stdin.
      expect(await pidRunning(guard)).toBe(true);
      expect(await readsStdin(guard)).toBe(false);
      expect(await createIpcClient(restored.ipc).request({ cmd: "state" })).toMatchObject({ random: before.random, count: 2, graphSum: graphSum(GRAPH_SIZE), pid: before.pid });

      guard = await nextGuard();
      others.add(guard);
      await rt.checkpoint(restored, path.join(f.scratch, "second-dump"));
      await pollFor(async () => ((await pidRunning(guard)) ? undefined : true), 10_000, `the waiting guard ${guard} to have run the dump and exited`);
      const again = f.track(await rt.restore(path.join(f.scratch, "second-dump"), { cwd: f.dir }));
      expect(await createIpcClient(again.ipc).request({ cmd: "state" })).toMatchObject({ random: before.random, count: 3, pid: before.pid });
      await again.kill();

      // A connected unix socket to a server outside the dumped tree: CRIU refuses it.
      const { proc: connected, ipc: client, close } = await startOutsideSocketTask(f, rt);
      try {
        expect(await client.next()).toEqual({ type: "connected" });
        guard = await nextGuard();
        others.add(guard);
        await expect(rt.checkpoint(connected, path.join(f.scratch, "refused-through-guard"))).rejects.toThrow(/checkpoint of task .* failed: criu dump failed: .*rror/);
        expect(await pidRunning(guard)).toBe(false);
        expect(await client.request({ cmd: "ping" })).toEqual({ type: "alive" });
        await connected.kill();
      } finally {
        close();
      }
    } finally {
      rt.close?.();
    }
    // Closed, its waiting guard is gone and none comes back.
    await pollFor(async () => ((await waitingGuards(workDir)).length > 0 ? undefined : true), 10_000, "the closed runtime's guard to end");
  });

  // A runner dumps a long wait beside the server's answer to the wait's call: only the answer says whether the task is
  // to end (a wait with its result already there goes on in the same process).
  it("holds a dumped task frozen for its verdict: no lets it go on where it was, go ends it as any dump", async () => {
    // A runtime of its own: its criu's action script is told from other dumps' by its work dir.
    const workDir = path.join(f.scratch, "verdict-runtime");
    const rt = f.own(await createProcessRuntime({ checkpoints: true, workDir }));
    expect(rt.checkpoints.verdicts).toBe(true);
    const waitingForVerdict = () => pollFor(() => postDumpScriptUnder(workDir), 30_000, "criu waiting for the dump's verdict");
    const logFile = path.join(f.dir, "verdict.log");
    const { proc, ipc } = await f.start(rt, logFile);
    const before = await ipc.request({ cmd: "state" });
    const ticks = async () => (await readFile(logFile, "utf8")).trim().split("\n").length;

    const held = (name: string) => {
      let decide!: (go: boolean) => void;
      const dumping = rt.checkpoint(proc, path.join(f.scratch, name), { verdict: new Promise<boolean>((resolve) => (decide = resolve)) });
      return { dumping, decide };
    };
    const declined = held("declined");
    // Dumped, and criu waits for the verdict with the task frozen: its 20 ms ticks stop, its ipc goes unanswered.
    await waitingForVerdict();
    const frozenAt = await ticks();
    let answered = false;
    const asked = ipc.request({ cmd: "state" }).then((state) => ((answered = true), state));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await ticks()).toBe(frozenAt);
    expect(answered).toBe(false);
    declined.decide(false);
    await expect(declined.dumping).rejects.toMatchObject({ code: "DUMP_DECLINED" });
    expect(await asked).toMatchObject({ random: before.random, count: 2, pid: before.pid });
    await pollFor(async () => ((await ticks()) > frozenAt ? true : undefined), 10_000, "the task to tick again");

    const taken = held("taken");
    await waitingForVerdict();
    taken.decide(true);
    expect((await taken.dumping).sizeBytes).toBeGreaterThan(5 * 1024 * 1024);
    expect(await proc.exited).toEqual({ code: null, signal: "SIGKILL" });
    const restored = f.track(await rt.restore(path.join(f.scratch, "taken"), { cwd: f.dir }));
    expect(await createIpcClient(restored.ipc).request({ cmd: "state" })).toMatchObject({ random: before.random, count: 3, pid: before.pid });
    await restored.kill();
    rt.close?.();
  });

  it("leaves a dumped task stopped with stopAfter: nothing of it runs until thaw, which continues it where it was; its dump restores too", async () => {
    expect(runtime.checkpoints.stops).toBe(true);
    const logFile = path.join(f.dir, "stopped.log");
    const { proc, ipc } = await f.start(runtime, logFile);
    const before = await ipc.request({ cmd: "state" });
    const ticks = async () => (await readFile(logFile, "utf8")).trim().split("\n").length;

    expect((await runtime.checkpoint(proc, path.join(f.scratch, "stopped"), { stopAfter: true })).sizeBytes).toBeGreaterThan(5 * 1024 * 1024);
    // Every process of it (the namespace's supervisor and the task) is stopped, none is gone.
    const states = await processStates(logFile);
    expect(states.length).toBeGreaterThanOrEqual(2);
    expect(states.every((state) => state === "T")).toBe(true);
    let ended = false;
    void proc.exited.then(() => (ended = true));
    const stoppedAt = await ticks();
    let answered = false;
    const asked = ipc.request({ cmd: "state" }).then((state) => ((answered = true), state));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await ticks()).toBe(stoppedAt);
    expect(answered).toBe(false);
    expect(ended).toBe(false);

    await proc.thaw!();
    expect(await asked).toMatchObject({ random: before.random, count: 2, pid: before.pid });
    await pollFor(async () => ((await ticks()) > stoppedAt ? true : undefined), 10_000, "the task to tick again");
    expect((await processStates(logFile)).every((state) => state !== "T")).toBe(true);

    // The dump is the state it was stopped in (one `state` answered), whatever the thawed one did since.
    const restored = f.track(await runtime.restore(path.join(f.scratch, "stopped"), { cwd: f.dir }));
    expect(await createIpcClient(restored.ipc).request({ cmd: "state" })).toMatchObject({ random: before.random, count: 2, pid: before.pid });
    await Promise.all([restored.kill(), proc.kill()]);
  });

  it("a restored task does not outlive a runner that crashed", async () => {
    const { proc } = await f.start(runtime, path.join(f.dir, "orphan-restored.log"));
    await runtime.checkpoint(proc, path.join(f.scratch, "orphan"));
    await crashRunnerAndExpectNoTask(["restore", path.join(f.scratch, "orphan")]);
  });

  // As when a restore fails after the task resumed (CRIU: "Unable to detach … No such process"):
  // the task is gone and criu does not exit. The run must still see its end.
  it("a restored task that died under a criu that stopped answering still reports its end", async () => {
    const restored = await restoreWithStoppedCriu("stuck-criu-died");
    process.kill(restored.init, "SIGKILL");
    expect(await restored.proc.exited).toEqual({ code: null, signal: "SIGKILL" });
    expect(await pidRunning(restored.criu)).toBe(false);
  });

  // criu writes its pidfile a few ms before it lets go of the task's threads. Stopped in that window,
  // it holds one in a ptrace stop: the killed init then waits, exiting, for that thread forever.
  it("a restored task that died under a criu that stopped answering while it still traced it reports its end", async () => {
    const restored = await restoreWithStoppedCriu("stuck-criu-tracing", { whileTracing: true });
    process.kill(restored.init, "SIGKILL");
    expect(await restored.proc.exited).toEqual({ code: null, signal: "SIGKILL" });
    expect(await pidRunning(restored.criu)).toBe(false);
  });

  it("kill() ends a restored task whose criu stopped answering", async () => {
    const restored = await restoreWithStoppedCriu("stuck-criu-killed");
    await restored.proc.kill();
    expect(await restored.proc.exited).toEqual({ code: null, signal: "SIGKILL" });
    expect(await pidRunning(restored.criu)).toBe(false);
    expect(await pidRunning(restored.init)).toBe(false);
  });
});

/**
 * A task checkpointed and restored, with its `criu restore` then stopped (SIGSTOP): the pids of criu
 * and of the restored namespace's init. `whileTracing`: stopped as soon as its pidfile is written,
 * once one of the task's threads is seen in a ptrace stop (or 50 ms passed), not after the restore returned.
 */
async function restoreWithStoppedCriu(name: string, { whileTracing = false } = {}): Promise<{ proc: TaskProcess; criu: number; init: number }> {
  const { proc } = await f.start(runtime, path.join(f.dir, `${name}.log`));
  const imageDir = path.join(f.scratch, name);
  await runtime.checkpoint(proc, imageDir);
  const restoring = runtime.restore(imageDir, { cwd: f.dir });
  const criu = await pollFor(() => criuRestoring(imageDir), 10_000, `criu restoring ${imageDir}`);
  const criuArgv = async (pid: number) => (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
  if (whileTracing) {
    const argv = await criuArgv(criu);
    const pidFile = argv[argv.indexOf("--pidfile") + 1];
    // The window is a few ms: polled synchronously, without yielding to the event loop (criu runs on).
    const pidFileDeadline = performance.now() + 60_000;
    let init = 0;
    // Until criu is gone too: a restore that fails then rejects below, instead of after the deadline.
    while (!init && performance.now() < pidFileDeadline && existsSync(`/proc/${criu}`)) init = Number(safely(() => readFileSync(pidFile, "utf8"), "").trim());
    const deadline = performance.now() + 50;
    while (performance.now() < deadline && !threadsOfTree(init).some((thread) => threadState(thread) === "t"));
    process.kill(criu, "SIGSTOP");
  }
  const restored = f.track(await restoring);
  if (!whileTracing) process.kill(criu, "SIGSTOP");
  const [init] = await childrenOf(criu);
  expect(await pidRunning(init)).toBe(true);
  return { proc: restored, criu, init };
}

/** `/proc/<pid>/task/<tid>` of every thread of `pid` and of its descendants. */
function threadsOfTree(pid: number): string[] {
  const threads: string[] = [];
  const walk = (p: number) => {
    for (const tid of safely(() => readdirSync(`/proc/${p}/task`), [] as string[])) {
      threads.push(`/proc/${p}/task/${tid}`);
      for (const child of safely(() => readFileSync(`/proc/${p}/task/${tid}/children`, "utf8"), "").split(" ").filter(Boolean)) walk(Number(child));
    }
  };
  walk(pid);
  return threads;
}

function threadState(thread: string): string | undefined {
  const stat = safely(() => readFileSync(`${thread}/stat`, "utf8"), "");
  return stat[stat.lastIndexOf(")") + 2];
}

/** What `read` returns, or `fallback` once the process it reads has gone. */
function safely<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/** A dump's criu action script under `workDir` at the end of the dump, where it waits for the verdict (dump-verdict.ts). */
async function postDumpScriptUnder(workDir: string): Promise<true | undefined> {
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (!argv.some((arg) => arg.startsWith(workDir) && arg.endsWith("/post-dump.sh"))) continue;
    const environ = (await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "")).split("\0");
    if (environ.includes("CRTOOLS_SCRIPT_ACTION=post-dump")) return true;
  }
  return undefined;
}

/**
 * The criu process restoring `imageDir`: not its guard (a bash, which holds criu's argv until its fork
 * execs criu; one started ahead holds none), whatever runs criu (setup-system.sh's wrapper execs its loader).
 */
async function criuRestoring(imageDir: string): Promise<number | undefined> {
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (path.basename(argv[0]) !== "bash" && argv.includes("restore") && argv.includes(imageDir) && argv.includes("--pidfile")) return Number(pid);
  }
  return undefined;
}

async function childrenOf(pid: number): Promise<number[]> {
  return (await readFile(`/proc/${pid}/task/${pid}/children`, "utf8")).split(" ").filter(Boolean).map(Number);
}
