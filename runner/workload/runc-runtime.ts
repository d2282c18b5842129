import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Duplex, Readable } from "node:stream";
import { promisify } from "node:util";
import { detectCriu, logSummary } from "./criu.ts";
import { criuAsTaskUser, criuRuntimeDir } from "./criu-user.ts";
import { dirSize } from "./dir-size.ts";
import { WorkloadError } from "./errors.ts";
import { socketInode } from "./namespace.ts";
import { createTaskCgroup, listTaskCgroups } from "./runc-cgroup.ts";
import { createContainer, type Container } from "./runc-container.ts";
import { handConfigThroughFifo } from "./runc-config-fifo.ts";
import { readRuncMeta, writeRuncMeta } from "./runc-meta.ts";
import { bundleSpec, containerProcess, type ContainerProcess } from "./runc-spec.ts";
import type { CheckpointSupport, MachineLimits, TaskProcess, WorkloadRuntime } from "./types.ts";
import { pidAlive } from "./pid-alive.ts";
import { populateDumpedMemory } from "./populate-dumped-memory.ts";

const run = promisify(execFile);

export interface RuncRuntimeOptions {
  /** Default: detect (runc, and CRIU >= 4.2 whose `criu check` passes). */
  checkpoints?: boolean;
  /** Bundles (config.json, CRIU config, logs) of live containers. Default `$TMPDIR/stasis-runc`. */
  workDir?: string;
  runcPath?: string;
  /** CRIU for runc to use (`runc --criu`). Default: `criu` on PATH. */
  criuPath?: string;
  /** The rootfs for starts and restores that name none (tests, local development). */
  rootfs?: string;
}

/** The fd a restored task's new ipc socket sits on in `runc restore` (runc's CRIU uses fd 3 itself). */
const RESTORE_IPC_FD = 5;
const RESTORE_TIMEOUT_MS = 60_000;

export async function detectRunc(runcPath = "runc"): Promise<{ ok: true; version: string } | { ok: false; reason: string }> {
  try {
    const { stdout } = await run(runcPath, ["--version"], { timeout: 10_000 });
    return { ok: true, version: /runc version (\S+)/.exec(stdout)?.[1] ?? stdout.trim() };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === "ENOENT" ? `runc not found (${runcPath}); run scripts/setup-system.sh` : `runc --version failed: ${String(err)}` };
  }
}

/**
 * Task processes in OCI containers run by `runc` on the image's own rootfs, with the task's machine
 * as cgroup limits, checkpointed with `runc checkpoint`/`restore`. The container's stdout/stderr
 * are runc's pipes (which runc re-creates on restore); fd 3, the runner's socket, is passed in with
 * `--preserve-fds` and declared external to CRIU through a per-container CRIU config file.
 */
export async function createRuncRuntime(options: RuncRuntimeOptions = {}): Promise<WorkloadRuntime> {
  const runcPath = options.runcPath ?? "runc";
  const workDir = path.resolve(options.workDir ?? path.join(tmpdir(), "stasis-runc"));
  const runc = await detectRunc(runcPath);
  if (!runc.ok) throw new WorkloadError("START_FAILED", `the runc workload needs runc: ${runc.reason}`);
  const globalArgs = options.criuPath ? ["--criu", options.criuPath] : [];

  let checkpoints: CheckpointSupport;
  if (options.checkpoints === false) {
    checkpoints = { available: false, reason: "checkpoints turned off" };
  } else {
    const criu = await detectCriu(options.criuPath ?? "criu");
    checkpoints = criu.ok ? { available: true } : { available: false, reason: criu.reason };
  }
  if (options.checkpoints === true && !checkpoints.available) {
    throw new WorkloadError("CHECKPOINTS_UNAVAILABLE", `checkpoints were required but are unavailable: ${checkpoints.reason}`);
  }
  await mkdir(workDir, { recursive: true });
  await deleteOrphans(runcPath, workDir);

  const containers = new WeakMap<TaskProcess, Container>();
  const requireCheckpoints = (what: string) => {
    if (!checkpoints.available) throw new WorkloadError("CHECKPOINTS_UNAVAILABLE", `cannot ${what}: checkpoints are unavailable (${checkpoints.reason})`);
  };
  const rootfsOf = async (given: string | undefined, fallback?: string): Promise<string> => {
    const rootfs = given ?? options.rootfs ?? fallback;
    if (!rootfs) throw new WorkloadError("START_FAILED", "the runc workload needs the image's rootfs (start/restore option `rootfs`)");
    const abs = path.resolve(rootfs);
    if (!(await stat(abs).catch(() => null))?.isDirectory()) throw new WorkloadError("START_FAILED", `the image rootfs ${abs} is not a directory`);
    return abs;
  };

  /**
   * A bundle dir with config.json and an empty CRIU config, and the parent cgroup with the memory
   * limit. For a start, config.json is a named pipe runc reads once (see runc-config-fifo.ts).
   */
  async function prepare(rootfs: string, processSpec: ContainerProcess, machine: MachineLimits | undefined, throughFifo = false) {
    const id = `stasis-${process.pid}-${randomUUID().slice(0, 8)}`;
    const bundle = path.join(workDir, id);
    await mkdir(bundle, { recursive: true });
    const cgroup = await createTaskCgroup(id, machine?.memory);
    const criuConfig = path.join(bundle, "criu.conf");
    await writeFile(criuConfig, "");
    const spec = bundleSpec({ rootfs, process: processSpec, cgroupsPath: cgroup.runcPath, machine, criuConfig });
    const configFile = path.join(bundle, "config.json");
    const fifo = throughFifo ? await handConfigThroughFifo(configFile, spec as { process: { env: string[] } }) : null;
    if (!fifo) await writeFile(configFile, JSON.stringify(spec, null, 2));
    return { id, bundle, cgroup, criuConfig, pidFile: path.join(bundle, "task.pid"), fifo };
  }

  function track(container: Container): TaskProcess {
    containers.set(container.proc, container);
    return container.proc;
  }

  return {
    checkpoints,

    async start(opts) {
      const rootfs = await rootfsOf(opts.rootfs);
      const processSpec = await containerProcess(rootfs, opts);
      const { fifo, ...prepared } = await prepare(rootfs, processSpec, opts.machine, true);
      const child = spawn(runcPath, [...globalArgs, "run", "--bundle", prepared.bundle, "--pid-file", prepared.pidFile, "--preserve-fds", "1", prepared.id], {
        stdio: ["ignore", "pipe", "pipe", "pipe"],
      });
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", (err) => reject(new WorkloadError("START_FAILED", `cannot start ${runcPath}: ${err.message}`, { cause: err })));
      }).catch(async (err: unknown) => {
        await fifo?.abandon();
        throw err;
      });
      child.once("exit", () => void fifo?.abandon());
      // runc reads its spec first thing; after that config.json is a plain file without the environment.
      await fifo?.fed;
      return track(createContainer({ ...prepared, child, stdout: child.stdio[1] as Readable, stderr: child.stdio[2] as Readable, ipc: child.stdio[3] as Duplex, machine: opts.machine }));
    },

    async checkpoint(proc, imageDir, dumpOptions) {
      requireCheckpoints("checkpoint");
      const container = containers.get(proc);
      if (!container) throw new WorkloadError("UNKNOWN_PROCESS", `task ${proc.id} was not started or restored by this runtime`);
      if (!container.running) throw new WorkloadError("NOT_RUNNING", `task ${proc.id} is not running`);
      const { id, bundle } = container.parts;
      const pid = await container.pid();
      const ipcSocket = await socketInode(pid, 3).catch((err: Error) => {
        throw new WorkloadError("DUMP_FAILED", `cannot checkpoint task ${id}: ${err.message}`, { cause: err });
      });
      const meta = await readSpecOf(bundle);
      const imageAbs = path.resolve(imageDir);
      await mkdir(imageAbs, { recursive: true });
      const work = path.join(bundle, `dump-${Date.now()}`);
      // runc runs criu itself, as root: without CAP_SYS_RESOURCE a root criu cannot read another user's
      // rlimits, so it runs criu through a wrapper as the task's user (criu-user.ts), `--unprivileged`.
      const asUser = meta.process.user && meta.process.user.uid !== 0 ? criuAsTaskUser(meta.process.user) : { prefix: [], flags: [] };
      await writeFile(path.join(bundle, "criu.conf"), `external unix[${ipcSocket}]\n${asUser.flags.map((f) => `${f.replace(/^--/, "")}\n`).join("")}`);
      const dumpArgs = asUser.prefix.length > 0 ? ["--criu", await writeCriuWrapper(bundle, [...asUser.prefix, options.criuPath ?? "criu"], criuRuntimeDir(workDir))] : globalArgs;
      const started = performance.now();
      try {
        if (!dumpOptions?.leaveRunning) container.expectKill();
        const leave = dumpOptions?.leaveRunning ? ["--leave-running"] : [];
        await run(runcPath, [...dumpArgs, "checkpoint", "--image-path", imageAbs, "--work-path", work, "--tcp-established", "--file-locks", ...leave, id], { maxBuffer: 16 * 1024 * 1024 });
      } catch (err) {
        container.expectKill(false);
        throw new WorkloadError("DUMP_FAILED", `checkpoint of task ${id} failed: criu dump failed: ${await logSummary(path.join(work, "dump.log"), err)}`, { cause: err });
      }
      const dumpMs = Math.round(performance.now() - started);
      // No environment in the checkpoint's metadata (config.json has none by now either): it may hold
      // secrets, and a restore does not need it (CRIU brings the process back with its environment).
      const withoutEnv = { ...meta.process, env: [] };
      await writeRuncMeta(imageAbs, { format: 1, runtime: "runc", ipcSocket, process: withoutEnv, rootfs: meta.rootfs, machine: container.parts.machine, dumpedAt: new Date().toISOString() });
      if (!dumpOptions?.leaveRunning) await proc.exited;
      return { dumpMs, sizeBytes: dirSize(imageAbs) };
    },

    settleDump(imageDir) {
      populateDumpedMemory(path.resolve(imageDir));
    },

    async restore(imageDir, opts) {
      requireCheckpoints("restore");
      const imageAbs = path.resolve(imageDir);
      const meta = await readRuncMeta(imageAbs);
      populateDumpedMemory(imageAbs);
      const rootfs = await rootfsOf(opts.rootfs, meta.rootfs);
      const machine = opts.machine ?? meta.machine;
      const { fifo: _none, ...prepared } = await prepare(rootfs, meta.process, machine);
      await writeFile(prepared.criuConfig, `inherit-fd fd[${RESTORE_IPC_FD}]:socket:[${meta.ipcSocket}]\n`);
      const work = path.join(prepared.bundle, "restore");
      const args = [...globalArgs, "restore", "--image-path", imageAbs, "--work-path", work, "--tcp-established", "--file-locks", "--pid-file", prepared.pidFile, "--bundle", prepared.bundle, prepared.id];
      const child = spawn(runcPath, args, { stdio: ["ignore", "pipe", "pipe", "ignore", "ignore", "pipe"] });
      let runcOutput = "";
      const stderr = child.stdio[2] as Readable;
      const captureErr = (chunk: Buffer) => (runcOutput = (runcOutput + chunk.toString()).slice(-4000));
      stderr.on("data", captureErr);
      const container = createContainer({ ...prepared, child, stdout: child.stdio[1] as Readable, stderr, ipc: (child.stdio as unknown as Duplex[])[RESTORE_IPC_FD], machine });
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no task after ${RESTORE_TIMEOUT_MS} ms`)), RESTORE_TIMEOUT_MS).unref());
      try {
        await Promise.race([container.pid(), timeout, new Promise((_, reject) => child.once("error", reject))]);
      } catch (err) {
        const summary = await logSummary(path.join(work, "restore.log"), { stderr: runcOutput });
        await container.proc.kill();
        throw new WorkloadError("RESTORE_FAILED", `restore of ${imageAbs} failed: ${(err as Error).message}: ${summary}`, { cause: err });
      }
      stderr.off("data", captureErr);
      return track(container);
    },
  };
}

/** A `criu` for `runc --criu`: runs `command` (criu as the task's user) with runc's arguments. */
async function writeCriuWrapper(bundle: string, command: string[], runtimeDir: string): Promise<string> {
  const file = path.join(bundle, "criu-as-task.sh");
  const quote = (arg: string) => `'${arg.replace(/'/g, "'\\''")}'`;
  // criu-user.ts's criuEnvironment, for the criu that runc runs through this script.
  await writeFile(file, `#!/bin/sh\nXDG_RUNTIME_DIR=${quote(runtimeDir)} exec ${command.map(quote).join(" ")} "$@"\n`, { mode: 0o700 });
  return file;
}

async function readSpecOf(bundle: string): Promise<{ process: ContainerProcess; rootfs: string }> {
  const spec = JSON.parse(await readFile(path.join(bundle, "config.json"), "utf8")) as { root: { path: string }; process: { args: string[]; env: string[]; cwd: string; user?: { uid: number; gid: number } }; mounts: Array<{ type: string; source: string; options?: string[] }> };
  const bound = spec.mounts.filter((m) => m.type === "bind");
  const readOnly = (m: { options?: string[] }) => m.options?.includes("ro") ?? false;
  const binds = bound.filter((m) => !readOnly(m)).map((m) => m.source);
  const files = bound.filter(readOnly).map((m) => m.source);
  const user = spec.process.user && spec.process.user.uid !== 0 ? { user: spec.process.user } : {};
  return { rootfs: spec.root.path, process: { args: spec.process.args, env: spec.process.env, cwd: spec.process.cwd, binds, files, ...user } };
}

/**
 * Containers (and cgroups) left by a runner that died, its PID being in their id. Its tasks exit by
 * themselves when their ipc socket closes; this catches any that did not, and the empty cgroups.
 */
async function deleteOrphans(runcPath: string, workDir: string): Promise<void> {
  const listed = await run(runcPath, ["list", "--format", "json"], { timeout: 10_000 }).catch(() => ({ stdout: "null" }));
  const containers = ((JSON.parse(listed.stdout || "null") as Array<{ id: string }> | null) ?? []).map((c) => c.id);
  const cgroups = await listTaskCgroups();
  const orphaned = (id: string) => {
    const owner = /^stasis-(\d+)-/.exec(id)?.[1];
    return owner !== undefined && !pidAlive(Number(owner));
  };
  for (const id of containers.filter(orphaned)) await run(runcPath, ["delete", "--force", id], { timeout: 10_000 }).catch(() => {});
  for (const id of new Set([...containers, ...cgroups].filter(orphaned))) await (await createTaskCgroup(id, undefined)).remove();
  for (const id of (await readdir(workDir)).filter(orphaned)) await rm(path.join(workDir, id), { recursive: true, force: true });
}
