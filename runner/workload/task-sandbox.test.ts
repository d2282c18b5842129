/** Every live process whose real uid is `uid`, with its /proc/PID/status. */
async function processesOf(uid: number): Promise<Array<{ pid: number; status: string }>> {
  const found: Array<{ pid: number; status: string }> = [];
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    if (new RegExp(`^Uid:\\s+${uid}\\s`, "m").test(status) && !/^State:\s+Z/m.test(status)) found.push({ pid: Number(pid), status });
  }
  return found;
}

import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { processesMatching, readsStdin } from "../../test/support/processes.ts";
import { pollFor } from "./poll.ts";
import { pidRunning } from "./pid-alive.ts";
import path from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { createProcessRuntime } from "./index.ts";
import { criuDumpsOtherUsers, criuRuntimeDir } from "./criu-user.ts";
import { collect, createIpcClient } from "./test-support/ipc-client.ts";
import { GRAPH_SIZE, graphSum } from "./test-support/stateful-task.ts";
import { useTaskFixture } from "./test-support/task-fixture.ts";
import type { TaskSandbox } from "./task-sandbox.ts";

const asRoot = process.getuid?.() === 0;
// A work dir of its own: its guards are told from other runtimes' by it (their command lines name it).
const workDir = await mkdtemp(path.join(tmpdir(), "sandbox-runtime-"));
const runtime = await createProcessRuntime({ workDir });
const f = useTaskFixture();
f.own(runtime);
afterAll(() => rm(workDir, { recursive: true, force: true }));
// Its own uids per run (UID to UID + 9): another run of these tests at the same time, on this host, looks for its tasks by theirs.
const UID = 1_000_000_000 + 400_000 + (process.pid % 10_000) * 10;

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
    // Something in its /dev/shm too (written from here, as root, through its root).
    const [{ pid: first }] = await processesOf(UID);
    await writeFile(`/proc/${first}/root/dev/shm/marker`, "in shm\n");
    // Where root lacks CAP_SYS_RESOURCE criu dumps as the task's user, and finds its kernel probe's cache through the
    // environment the runtime gives it: that cache, removed, is written again by the dump (as by the second one below,
    // whose guard was started ahead).
    const kdat = path.join(criuRuntimeDir(workDir), "criu.kdat");
    const unprivileged = !criuDumpsOtherUsers();
    if (unprivileged) await rm(kdat, { force: true });
    const started = performance.now();
    const { dumpMs } = await runtime.checkpoint(proc, path.join(f.scratch, "sandboxed"));
    if (unprivileged) expect(existsSync(kdat)).toBe(true);
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
    for (const { status } of tasks) expect(status).toMatch(/^CapEff:\s+0+$/m);

    // That restore started a guard for the next one: in a mount namespace of its own, the root's tmpfs mounted
    // ahead and filled, read-only, from this task's root archive (root-templates.ts), waiting for its command. The
    // next restore of a sandboxed task goes through it, and keeps that root when its own archive is the same.
    const guard = await pollFor(async () => (await waitingRootGuards(workDir))[0], 10_000, "a root guard of this runtime waiting for its command");
    expect(await readlink(`/proc/${guard}/ns/mnt`)).not.toBe(await readlink("/proc/self/ns/mnt"));
    expect(await readFile(`/proc/${guard}/mountinfo`, "utf8")).toMatch(/\/sandbox-root ro,nosuid\S* .*- tmpfs stasis-root /);
    expect(await readFile(`/proc/${guard}/root${path.join(workDir, "sandbox-root")}/etc/passwd`, "utf8")).toContain(`:${UID}:${UID}:`);
    if (unprivileged) await rm(kdat, { force: true });
    await runtime.checkpoint(restored, path.join(f.scratch, "sandboxed-again"));
    if (unprivileged) expect(existsSync(kdat)).toBe(true);
    const again = f.track(await runtime.restore(path.join(f.scratch, "sandboxed-again"), { cwd: f.dir }));
    // The guard runs criu, which stays the restored tree's parent: alive, no longer reading its stdin.
    expect(await readsStdin(guard)).toBe(false);
    const ipc3 = createIpcClient(again.ipc);
    expect(await ipc3.request({ cmd: "state" })).toMatchObject({ random: before.random, count: 3, graphSum: graphSum(GRAPH_SIZE), pid: before.pid });
    // Its root is the saved one, read-only, as a restore without a guard ahead makes it.
    const [{ pid: task }] = await processesOf(UID);
    expect((await readFile(`/proc/${task}/mountinfo`, "utf8")).split("\n").find((line) => line.split(" ")[4] === "/")).toMatch(/^\S+ \S+ \S+ \/ \/ ro,/);
    expect((await readdir(`/proc/${task}/root/tmp`))).toContain("sandboxed.log");
    expect(await readFile(`/proc/${task}/root/dev/shm/marker`, "utf8")).toBe("in shm\n");
    // Its /tmp is the one its memory knows: the log it writes a tick to every 20 ms has every tick once, in order, across
    // both dumps (saved while it was frozen, not before: a tick written in between would be missing from the file).
    const ticks = (await readFile(`/proc/${task}/root/tmp/sandboxed.log`, "utf8")).trim().split("\n").map((line) => Number(line.split(" ")[1]));
    expect(ticks).toEqual(ticks.map((_, i) => i + 1));
    // Its /tmp and /dev/shm are still tmpfs mounts of their own, nosuid and nodev, of the sandbox's size (256 MB by default).
    const mounts = (await readFile(`/proc/${task}/mountinfo`, "utf8")).split("\n");
    for (const at of ["/tmp", "/dev/shm"]) {
      expect(mounts.find((line) => line.split(" ")[4] === at)).toMatch(/ rw,nosuid,nodev\S* (.* )?- tmpfs \S+ rw,.*size=262144k/);
    }
    ipc3.send({ cmd: "exit", code: 5 });
    expect(await again.exited).toEqual({ code: 5, signal: null });
  });

  it("is dumped while dirs shared with it (under its /tmp, and on its root) keep changing (another process writes there), and sees them again after its restore", async () => {
    await chmod(f.dir, 0o755);
    // Host dirs shared with the task at the same path: one under /tmp (inside the task's own /tmp tmpfs), one under
    // /var/tmp (on its read-only root, whose tar runs before criu).
    const shared = path.join(await mkdtemp(path.join(tmpdir(), "stasis-shared-")), "shared");
    const onRoot = path.join(await mkdtemp("/var/tmp/stasis-shared-"), "shared");
    onTestFinished(() => rm(path.dirname(onRoot), { recursive: true, force: true }));
    for (const dir of [shared, onRoot]) {
      await mkdir(dir, { mode: 0o777 });
      await chmod(dir, 0o777);
    }
    const sandbox: TaskSandbox = { uid: UID, gid: UID, expose: [path.dirname(process.execPath)], hide: [f.scratch], shared: [shared, onRoot] };
    const proc = f.track(await runtime.start({ command: process.execPath, args: [f.script, "/tmp/shared-case.log", String(GRAPH_SIZE)], cwd: f.dir, env: { PATH: process.env.PATH ?? "", HOME: "/tmp" }, sandbox }));
    const ipc = createIpcClient(proc.ipc);
    expect(await ipc.next()).toMatchObject({ type: "ready" });
    // Another process changes the shared dir all the time (its entries, so its mtime and ctime): the dump's tar of the
    // task's /tmp stores that dir's entry (a mount point), never its content, and must not fail because it changed.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        for (const dir of [shared, onRoot]) {
          await writeFile(path.join(dir, `f${i % 8}`), String(i));
          await rm(path.join(dir, `f${(i + 4) % 8}`), { force: true });
        }
      }
    })();
    try {
      for (const round of [1, 2, 3]) {
        const dir = path.join(f.scratch, `shared-${round}`);
        await runtime.checkpoint(proc, dir, { leaveRunning: true });
        expect((await readdir(dir)).sort()).toContain("stasis-scratch.tar");
      }
    } finally {
      writing = false;
      await writer;
    }
    await proc.kill();
    await proc.exited;
    const restored = f.track(await runtime.restore(path.join(f.scratch, "shared-3"), { cwd: f.dir, sandbox }));
    const ipc2 = createIpcClient(restored.ipc);
    expect(await ipc2.request({ cmd: "state" })).toMatchObject({ graphSum: graphSum(GRAPH_SIZE) });
    for (const dir of [shared, onRoot]) {
      await writeFile(path.join(dir, "after-restore"), "seen\n");
      const seen = await Promise.any((await processesOf(UID)).map(({ pid }) => readFile(`/proc/${pid}/root${dir}/after-restore`, "utf8")));
      expect(seen).toBe("seen\n");
    }
  });

  it("is restored, on the runtime that dumped it, by a guard that filled its root and /tmp right after the dump; one prepared for another /tmp size is let go", async () => {
    await chmod(f.dir, 0o755);
    // A user of its own: the tasks of the tests above are still alive.
    const uid = UID + 1;
    const sandbox: TaskSandbox = { uid, gid: uid, expose: [path.dirname(process.execPath)], hide: [f.scratch], shared: [] };
    let proc = f.track(await runtime.start({ command: process.execPath, args: [f.script, "/tmp/prepared.log", String(GRAPH_SIZE)], cwd: f.dir, env: { PATH: process.env.PATH ?? "", HOME: "/tmp" }, sandbox }));
    expect(await createIpcClient(proc.ipc).next()).toMatchObject({ type: "ready" });
    const stage = path.join(workDir, "sandbox-root");
    const scratch = path.join(workDir, "sandbox-scratch");
    for (const round of [1, 2, 3]) {
      // A root guard waits ahead (the runtime's first restore starts one): the dump hands it this checkpoint.
      const guard = round === 1 ? undefined : await pollFor(async () => (await waitingRootGuards(workDir))[0], 10_000, "a root guard waiting ahead");
      const dir = path.join(f.scratch, `prepared-${round}`);
      await runtime.checkpoint(proc, dir);
      if (guard) {
        // Before any restore is asked for, that guard has the task's root (read-only) and its /tmp, with the log in it.
        await pollFor(async () => (await readFile(`/proc/${guard}/root${scratch}/tmp/prepared.log`, "utf8").catch(() => "")).includes("tick") || undefined, 10_000, "the guard to have filled the checkpoint's /tmp");
        expect(await readdir(`/proc/${guard}/root${stage}`)).toEqual(expect.arrayContaining(["dev", "proc", "tmp"]));
        expect((await readFile(`/proc/${guard}/mountinfo`, "utf8")).split("\n").find((line) => line.split(" ")[4] === stage)).toMatch(/ ro,/);
        expect(await readsStdin(guard)).toBe(true);
      }
      // The third restore asks for another /tmp size than the one prepared: that guard is let go, and the restore takes the usual way.
      const restoreSandbox = round === 3 ? { ...sandbox, tmpMb: 64 } : sandbox;
      proc = f.track(await runtime.restore(dir, { cwd: f.dir, sandbox: restoreSandbox }));
      expect(await createIpcClient(proc.ipc).request({ cmd: "state" })).toMatchObject({ count: round, graphSum: graphSum(GRAPH_SIZE) });
      const [{ pid: task }] = await processesOf(uid);
      const ticks = (await readFile(`/proc/${task}/root/tmp/prepared.log`, "utf8")).trim().split("\n").map((line) => Number(line.split(" ")[1]));
      expect(ticks).toEqual(ticks.map((_, i) => i + 1));
      expect((await readFile(`/proc/${task}/mountinfo`, "utf8")).split("\n").find((line) => line.split(" ")[4] === "/tmp")).toMatch(round === 3 ? /size=65536k/ : /size=262144k/);
      if (round === 2) expect(await readsStdin(guard!)).toBe(false); // it ran this restore's criu
      if (round === 3) await pollFor(async () => ((await pidRunning(guard!)) ? undefined : true), 10_000, "the guard prepared for another size to exit");
    }
  });

  it("goes on where it was when its root cannot be saved (its dump fails and says so), and its next dump restores", async () => {
    await chmod(f.dir, 0o755);
    const uid = UID + 2;
    const sandbox: TaskSandbox = { uid, gid: uid, expose: [path.dirname(process.execPath)], hide: [f.scratch], shared: [] };
    const proc = f.track(await runtime.start({ command: process.execPath, args: [f.script, "/tmp/unsaved.log", String(GRAPH_SIZE)], cwd: f.dir, env: { PATH: process.env.PATH ?? "", HOME: "/tmp" }, sandbox }));
    const ipc = createIpcClient(proc.ipc);
    expect(await ipc.next()).toMatchObject({ type: "ready" });
    // Where the root's archive goes is a dir: the root is saved beside criu, which dumps the task all the same.
    const unsaved = path.join(f.scratch, "unsaved");
    await mkdir(path.join(unsaved, "stasis-root.tar"), { recursive: true });
    await expect(runtime.checkpoint(proc, unsaved)).rejects.toMatchObject({ code: "DUMP_FAILED", message: expect.stringMatching(/saving the task root failed/) });
    expect(await ipc.request({ cmd: "state" })).toMatchObject({ count: 1, graphSum: graphSum(GRAPH_SIZE) });
    const saved = path.join(f.scratch, "saved");
    await runtime.checkpoint(proc, saved);
    const restored = f.track(await runtime.restore(saved, { cwd: f.dir, sandbox }));
    expect(await createIpcClient(restored.ipc).request({ cmd: "state" })).toMatchObject({ count: 2, graphSum: graphSum(GRAPH_SIZE) });
  });
});

/** Pids of the root guards of the runtime on `workDir` (criu-guard.ts `rootStandbyGuard`) waiting for their command. */
async function waitingRootGuards(workDir: string): Promise<number[]> {
  const guards = await processesMatching("stasis-criu-root-guard", `\0${workDir}\0${path.join(workDir, "sandbox-root")}\0`);
  const waiting = await Promise.all(guards.map(readsStdin));
  return guards.filter((_, i) => waiting[i]);
}
