// A sandboxed task's root is built from nothing (task-root.sh): it sees only what is bound for it,
// writes only to its own /tmp, /dev/shm and the shared dirs, and — since none of the host's mounts is
// in its namespace — CRIU dumps and restores it while other software holds mounts on the host (a
// network namespace from `ip netns add`, a container engine's overlay, another program's tmpfs whose
// files come and go), none of which lands in its checkpoint.
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import { CHECKPOINT_META_FILE, createProcessRuntime } from "./index.ts";
import { collect, createIpcClient } from "./test-support/ipc-client.ts";
import { GRAPH_SIZE, graphSum } from "./test-support/stateful-task.ts";
import { useTaskFixture } from "./test-support/task-fixture.ts";
import { APP_MOUNT_KEY, recentTaskRootOps, TASK_ROOT_REUSE_MS, taskRootEarlyFstab, taskRootFstab, taskRootOps, type TaskRoot } from "./task-root.ts";
import { parseMountinfo } from "./transient-mounts.ts";
import type { TaskSandbox } from "./task-sandbox.ts";

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;
const runtime = await createProcessRuntime();
const f = useTaskFixture();
f.own(runtime);
// Its own uids per run (a few, from UID): another run of these tests at the same time, on this host, looks for its tasks by theirs.
const UID = 1_000_000_000 + 500_000 + (process.pid % 10_000) * 10;
const netns = `stasis-root-test-${process.pid}`;

/** What the probe task reports about its world, then exits. */
const PROBE = String.raw`
import fs from "node:fs";
const [hostFiles, writable] = JSON.parse(process.argv[2]);
const seen = {};
for (const p of hostFiles) seen[p] = fs.existsSync(p);
const writes = {};
for (const dir of writable) {
  try { fs.writeFileSync(dir + "/probe-" + process.pid, "x"); writes[dir] = "ok"; } catch (e) { writes[dir] = e.code; }
}
const mounts = fs.readFileSync("/proc/self/mountinfo", "utf8").trim().split("\n").map((l) => l.split(" - ")[1].split(" ")[0] + " " + l.split(" ")[4]);
const pids = fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n)).length;
console.log(JSON.stringify({ uid: process.getuid(), top: fs.readdirSync("/").sort(), etc: fs.readdirSync("/etc").sort(), seen, writes, mounts, pids, user: (await import("node:os")).userInfo().username }));
`;

describe.skipIf(!asRoot || !runtime.checkpoints.available)("a sandboxed task's root, built from nothing", () => {
  let host = "";
  const foreign = { overlay: "", tmpfs: "", bind: "" };
  let churn: ReturnType<typeof spawn> | undefined;

  beforeAll(async () => {
    await chmod(f.dir, 0o755);
    host = await mkdtemp(path.join(tmpdir(), "stasis-root-host-"));
    // Other software's mounts: a network namespace kept by a bind mount, an overlay like a container's
    // root, a tmpfs of another program's scratch files (changing all the time), a bind of a host dir.
    await run("ip", ["netns", "add", netns]);
    for (const d of ["lower", "upper", "work", "merged", "scratch", "bind-src", "bind-dst"]) await mkdir(path.join(host, d));
    foreign.overlay = path.join(host, "merged");
    await run("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${host}/lower,upperdir=${host}/upper,workdir=${host}/work`, foreign.overlay]);
    foreign.tmpfs = path.join(host, "scratch");
    await run("mount", ["-t", "tmpfs", "-o", "size=8m", "foreign-tmpfs", foreign.tmpfs]);
    await writeFile(path.join(foreign.tmpfs, "program-data"), "another program's");
    foreign.bind = path.join(host, "bind-dst");
    await run("mount", ["--bind", path.join(host, "bind-src"), foreign.bind]);
    churn = spawn("sh", ["-c", `while :; do for i in 1 2 3 4 5 6 7 8; do echo x > ${foreign.tmpfs}/f-$i; done; rm -f ${foreign.tmpfs}/f-*; done`], { stdio: "ignore", detached: true });
  });
  afterAll(async () => {
    if (churn?.pid) process.kill(-churn.pid, "SIGKILL");
    await run("ip", ["netns", "delete", netns]).catch(() => {});
    for (const m of [foreign.overlay, foreign.tmpfs, foreign.bind]) if (m) await run("umount", ["-l", m]).catch(() => {});
    if (host) await rm(host, { recursive: true, force: true });
  });

  it("is dumped and restored, twice, with foreign mounts on the host, none of which is in its namespace or its checkpoint", async () => {
    const sandbox: TaskSandbox = { uid: UID, gid: UID, expose: [], hide: [f.scratch], shared: [] };
    const proc = f.track(await runtime.start({ command: process.execPath, args: [f.script, "/tmp/task.log", String(GRAPH_SIZE)], cwd: f.dir, env: { PATH: process.env.PATH ?? "" }, sandbox }));
    const err = collect(proc.stderr);
    const ipc = createIpcClient(proc.ipc);
    expect(await ipc.next().catch((e: Error) => `${e.message} ${err.text()}`)).toMatchObject({ type: "ready" });
    const before = await ipc.request({ cmd: "state" });

    await runtime.checkpoint(proc, path.join(f.scratch, "root-1"));
    expect(await imagesHolding(path.join(f.scratch, "root-1"), "program-data")).toEqual([]);
    const restored = f.track(await runtime.restore(path.join(f.scratch, "root-1"), { cwd: f.dir }));
    const ipc2 = createIpcClient(restored.ipc);
    expect(await ipc2.request({ cmd: "state" })).toMatchObject({ random: before.random, count: 2, graphSum: graphSum(GRAPH_SIZE), pid: before.pid });

    // A checkpoint cannot widen what the task sees: a bind its sandbox would not make is refused.
    const metaFile = path.join(f.scratch, "root-1", CHECKPOINT_META_FILE);
    const meta = JSON.parse(await readFile(metaFile, "utf8")) as { mounts: Array<{ mountPoint: string; key: string }> };
    await writeFile(metaFile, JSON.stringify({ ...meta, mounts: [...meta.mounts, { mountPoint: "/root", key: "/root" }] }));
    await expect(runtime.restore(path.join(f.scratch, "root-1"), { cwd: f.dir })).rejects.toMatchObject({ code: "BAD_CHECKPOINT", message: expect.stringContaining("would bind /root") });

    // Once more from the restored task, whose namespace CRIU rebuilt over a root it was handed back.
    await runtime.checkpoint(restored, path.join(f.scratch, "root-2"));
    const again = f.track(await runtime.restore(path.join(f.scratch, "root-2"), { cwd: f.dir }));
    const ipc3 = createIpcClient(again.ipc);
    expect(await ipc3.request({ cmd: "state" })).toMatchObject({ random: before.random, count: 3 });
    const initPid = await namespaceInit(UID);
    const mounts = parseMountinfo(await readFile(`/proc/${initPid}/mountinfo`, "utf8"));
    expect(mounts.filter((m) => ["nsfs", "overlay"].includes(m.fsType) || m.source === "foreign-tmpfs" || m.mountPoint.startsWith(host))).toEqual([]);
    // Its own IPC namespace (System V shared memory, semaphores, queues), kept across restores.
    expect(await readlink(`/proc/${initPid}/ns/ipc`)).not.toBe(await readlink("/proc/self/ns/ipc"));
    ipc3.send({ cmd: "exit", code: 0 });
    expect(await again.exited).toEqual({ code: 0, signal: null });

    // The host keeps its mounts.
    const hostMounts = parseMountinfo(await readFile("/proc/self/mountinfo", "utf8"));
    for (const m of [foreign.overlay, foreign.tmpfs, foreign.bind]) expect(hostMounts.some((e) => e.mountPoint === m)).toBe(true);
    expect(hostMounts.some((m) => m.fsType === "nsfs" && m.mountPoint.endsWith(`/netns/${netns}`))).toBe(true);
  });

  it("sees only what is bound for it and writes only to its own /tmp, /dev/shm and the shared dirs", async () => {
    // Another environment's app dir and a hidden runner dir inside a shared one.
    const other = await mkdtemp(path.join(tmpdir(), "stasis-other-env-"));
    const shared = path.join(host, "shared");
    const runnerDir = path.join(shared, "runner-work");
    await mkdir(runnerDir, { recursive: true });
    await writeFile(path.join(runnerDir, "token"), "secret");
    await chmod(shared, 0o1777);
    try {
      const probe = path.join(f.dir, "probe.mjs");
      await writeFile(probe, PROBE);
      // A file the task's command line names (as Node's --openssl-config does), under /tmp: copied into the task's own /tmp.
      const named = path.join(host, "named.cnf");
      await writeFile(named, "openssl_conf = x\n");
      const hostFiles = ["/etc/shadow", "/root", "/home", "/var", "/run", "/sys", f.scratch, other, path.join(runnerDir, "token"), foreign.overlay, "/usr/bin/node", process.execPath, "/etc/resolv.conf", named];
      const writable = ["/tmp", "/dev/shm", shared, runnerDir, f.dir, "/usr", "/etc", "/"];
      const sandbox: TaskSandbox = { uid: UID, gid: UID, expose: [], hide: [f.scratch, runnerDir], shared: [shared] };
      const proc = f.track(await runtime.start({ command: process.execPath, args: [probe, JSON.stringify([hostFiles, writable])], cwd: f.dir, env: { PATH: process.env.PATH ?? "" }, sandbox, files: [named] }));
      const out = collect(proc.stdout);
      const err = collect(proc.stderr);
      expect(await proc.exited, err.text()).toEqual({ code: 0, signal: null });
      const world = JSON.parse(out.text()) as { uid: number; top: string[]; etc: string[]; seen: Record<string, boolean>; writes: Record<string, string>; mounts: string[]; pids: number; user: string };
      expect(world.uid).toBe(UID);
      expect(world.user).toBe("task");
      expect(world.top).not.toContain("root");
      expect(world.top).not.toContain("home");
      expect(world.etc).not.toContain("shadow");
      for (const copied of ["nsswitch.conf", "localtime", "ld.so.cache"]) if (existsSync(`/etc/${copied}`)) expect(world.etc).toContain(copied);
      expect(world.seen).toMatchObject({ "/etc/shadow": false, "/root": false, "/home": false, "/var": false, "/run": false, "/sys": false, [f.scratch]: false, [other]: false, [path.join(runnerDir, "token")]: false, [foreign.overlay]: false, [process.execPath]: true, "/etc/resolv.conf": true, [named]: true });
      expect(world.writes).toEqual({ "/tmp": "ok", "/dev/shm": "ok", [shared]: "ok", [runnerDir]: "EACCES", [f.dir]: "EROFS", "/usr": "EROFS", "/etc": "EROFS", "/": "EROFS" });
      // Its own PID namespace: the supervisor and the task.
      expect(world.pids).toBe(2);
      // Of the host's mounts, only what is bound for it; the hidden runner dir is covered.
      const mountPoints = world.mounts.map((m) => m.split(" ")[1]);
      expect(world.mounts.filter((m) => /^(nsfs|overlay|fuse)/.test(m))).toEqual([]);
      expect(mountPoints.filter((m) => m.startsWith(host)).sort()).toEqual([shared, runnerDir].sort());
      expect(mountPoints).not.toContain("/sys");
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});

/** Host PID of the supervisor (PID 1) of the one live namespace whose processes run as `uid`. */
async function namespaceInit(uid: number): Promise<number> {
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    if (new RegExp(`^Uid:\\s+${uid}\\s`, "m").test(status) && /^NSpid:\s+\d+\s+1$/m.test(status)) return Number(pid);
  }
  throw new Error(`no namespace init runs as ${uid}`);
}

/** The tmpfs images (CRIU's tar.gz of a tmpfs's content) in `imageDir` that hold a file named `name`. */
async function imagesHolding(imageDir: string, name: string): Promise<string[]> {
  const found: string[] = [];
  for (const image of (await readdir(imageDir)).filter((file) => file.startsWith("tmpfs-") || file === "stasis-root.tar")) {
    const raw = await readFile(path.join(imageDir, image));
    if ((image.includes(".gz") ? gunzipSync(raw) : raw).includes(name)) found.push(image);
  }
  return found;
}

describe("taskRootOps", () => {
  it("binds parents before children, keeps an app dir inside a shared dir read-only, and covers hidden dirs inside binds", async () => {
    const base = await mkdtemp(path.join(tmpdir(), "stasis-root-ops-"));
    try {
      const shared = path.join(base, "shared");
      const app = path.join(shared, "cache", "app");
      const work = path.join(shared, "runner-work");
      for (const d of [app, work]) await mkdir(d, { recursive: true });
      const { mounts, externals } = await taskRootOps({ uid: UID, gid: UID, expose: [], hide: [path.join(shared, "cache"), work], shared: [shared] }, app);
      const binds = externals.filter((m) => m.mountPoint.startsWith(base));
      expect(binds).toEqual([{ mountPoint: shared, key: shared }, { mountPoint: app, key: APP_MOUNT_KEY }]);
      const at = (kind: string, p: string) => mounts.findIndex((m) => m.kind === kind && m.path === p);
      expect(at("rw", shared)).toBeGreaterThanOrEqual(0);
      expect(at("rw", shared)).toBeLessThan(at("ro", app));
      expect(at("hide-dir", work)).toBeGreaterThan(at("rw", shared));
      // The hidden cache is covered after the shared dir is bound and before the app dir inside it is.
      expect(at("hide-dir", path.join(shared, "cache"))).toBeGreaterThan(at("rw", shared));
      expect(at("hide-dir", path.join(shared, "cache"))).toBeLessThan(at("ro", app));
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });

  it("is reused for one sandbox and app dir for a while (a restore's binds check skips the walk), and looked at again after: a dir made since is bound then", async () => {
    const base = await mkdtemp(path.join(tmpdir(), "stasis-root-recent-"));
    onTestFinished(() => rm(base, { recursive: true, force: true }));
    onTestFinished(() => void vi.useRealTimers());
    vi.useFakeTimers({ toFake: ["Date"] });
    const later = path.join(base, "later");
    const sandbox: TaskSandbox = { uid: UID, gid: UID, expose: [], hide: [], shared: [later] };
    const bound = async (root: Promise<TaskRoot>) => (await root).externals.some((m) => m.mountPoint === later);
    const first = recentTaskRootOps(sandbox, base);
    expect(await bound(first)).toBe(false);
    await mkdir(later);
    expect(recentTaskRootOps(sandbox, base)).toBe(first);
    // Another sandbox is its own: walked now, it binds the new dir.
    expect(await bound(recentTaskRootOps({ ...sandbox, uid: UID + 1, gid: UID + 1 }, base))).toBe(true);
    vi.setSystemTime(Date.now() + TASK_ROOT_REUSE_MS);
    const again = recentTaskRootOps(sandbox, base);
    expect(again).not.toBe(first);
    expect(await bound(again)).toBe(true);
  });

  it("writes every mount as one fstab line, /proc first, with white space and backslashes in paths escaped", () => {
    expect(taskRootEarlyFstab("/run/stage one", "size=8m").trimEnd().split("\n")).toEqual([
      "proc /run/stage\\040one/proc proc nosuid,nodev,noexec 0 0",
      "stasis-tmp /run/stage\\040one/tmp tmpfs mode=1777,nosuid,nodev,size=8m 0 0",
      "stasis-tmp /run/stage\\040one/dev/shm tmpfs mode=1777,nosuid,nodev,size=8m 0 0",
    ]);
    const fstab = taskRootFstab("/run/stage", [{ kind: "ro", source: "/srv/app one", path: "/srv/app one" }, { kind: "rw", source: "/data\\x", path: "/data\\x" }, { kind: "hide-dir", path: "/data\\x/runner" }, { kind: "hide-file", path: "/data\\x/token" }]);
    expect(fstab.trimEnd().split("\n")).toEqual([
      "/srv/app\\040one /run/stage/srv/app\\040one none bind,ro,nosuid,nodev,X-mount.mkdir 0 0",
      "/data\\134x /run/stage/data\\134x none bind,nosuid,nodev,X-mount.mkdir 0 0",
      "stasis-hidden /run/stage/data\\134x/runner tmpfs size=16k,mode=0555,nosuid,nodev 0 0",
      "/run/stage/dev/null /run/stage/data\\134x/token none bind 0 0",
    ]);
  });
});
