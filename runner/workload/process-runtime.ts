import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Duplex, Readable } from "node:stream";
import { detectCriu } from "./criu.ts";
import { rootStandbyGuard, standbyGuard, type GuardKind } from "./criu-guard.ts";
import { createGuardStandby, type GuardStandby } from "./criu-standby.ts";
import { criuEnvironment, criuRuntimeDir } from "./criu-user.ts";
import { dumpTask } from "./dump-task.ts";
import { WorkloadError } from "./errors.ts";
import { namespaceArgv, namespaceInitPid, probeNamespaces, type NamespaceTools } from "./namespace.ts";
import { createPidFiles } from "./leftovers.ts";
import { populateDumpedMemory } from "./populate-dumped-memory.ts";
import { RESTORE_FDS, restoreTask } from "./restore-task.ts";
import { createTaskHandle, type TaskHandle } from "./task-process.ts";
import { createPreparedRestores } from "./prepared-restores.ts";
import { createRootTemplates, rootArchiveField } from "./root-templates.ts";
import { ROOT_ARCHIVE, SCRATCH_ARCHIVE, SCRATCH_MOUNTS, scratchSize, taskRootArgv, taskRootOps } from "./task-root.ts";
import type { CheckpointSupport, StartTaskOptions, TaskProcess, WorkloadRuntime } from "./types.ts";

export interface ProcessRuntimeOptions {
  /** Default: detect (CRIU >= 4.2 whose `criu check` passes, and a working `unshare`). */
  checkpoints?: boolean;
  /**
   * Where CRIU logs and pid files go while it runs. Default: `$TMPDIR/stasis-workload`. What an
   * earlier runner of the same work dir left running when it was killed is ended at start.
   */
  workDir?: string;
  /** Default: `criu` on PATH. */
  criuPath?: string;
  tools?: Partial<NamespaceTools>;
}

/** A checkpoint whose /tmp and /dev/shm archive is bigger is not prepared ahead (prepared-restores.ts). */
const PREPARE_SCRATCH_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Task processes as plain host processes, each in its own PID namespace (so a restore never
 * collides with a live PID), checkpointed with CRIU.
 */
export async function createProcessRuntime(options: ProcessRuntimeOptions = {}): Promise<WorkloadRuntime> {
  const tools: NamespaceTools = { setpriv: "setpriv", unshare: "unshare", setsid: "setsid", bash: "bash", ...options.tools };
  const workDir = path.resolve(options.workDir ?? path.join(tmpdir(), "stasis-workload"));
  const criuPath = options.criuPath ?? "criu";
  const namespaces = probeNamespaces(tools);
  const pidFiles = createPidFiles(workDir);
  await pidFiles.reap();
  // Dumps and restores (the memory of tasks, in clear) and pid files: the runner's alone.
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  await chmod(workDir, 0o700);
  // A sandboxed task's root is a tmpfs mounted over this empty dir, in the task's own mount namespace only.
  const stage = path.join(workDir, "sandbox-root");
  await mkdir(stage, { recursive: true, mode: 0o700 });
  // Its /tmp and /dev/shm after a restore: a tmpfs over each of these, the same way.
  const scratch = path.join(workDir, "sandbox-scratch");
  for (const m of SCRATCH_MOUNTS) await mkdir(path.join(scratch, m.dir), { recursive: true, mode: 0o700 });

  let checkpoints: CheckpointSupport;
  let criuVersion = "";
  if (options.checkpoints === false) {
    checkpoints = { available: false, reason: "checkpoints turned off" };
  } else if (!namespaces.ok) {
    checkpoints = { available: false, reason: `no PID namespace for task processes: ${namespaces.reason}` };
  } else {
    const criu = await detectCriu(criuPath);
    checkpoints = criu.ok ? { available: true, verdicts: true, stops: true } : { available: false, reason: criu.reason };
    if (criu.ok) criuVersion = criu.version;
  }
  if (options.checkpoints === true && !checkpoints.available) {
    throw new WorkloadError("CHECKPOINTS_UNAVAILABLE", `checkpoints were required but are unavailable: ${checkpoints.reason}`);
  }

  const criuEnv = checkpoints.available ? criuEnvironment(criuRuntimeDir(workDir)) : undefined;
  const handles = new WeakMap<TaskProcess, TaskHandle>();
  // The first dump or restore starts its guard itself; from then on one waits ready for the next (criu-standby.ts).
  // A sandboxed task's restore takes one of its own, waiting in a mount namespace with the root's tmpfs mounted.
  const standbys: Record<GuardKind, GuardStandby | null> = { plain: null, root: null };
  // A root guard started ahead fills its root from the newest sandboxed checkpoint's here: the next of that sandbox finds it done.
  const rootTemplates = createRootTemplates(path.join(workDir, "root-templates"));
  const standbyArgv: Record<GuardKind, () => [string, string[]]> = {
    plain: () => standbyGuard(tools, workDir),
    root: () => rootStandbyGuard(tools, stage, scratch, scratchSize(undefined), workDir, rootTemplates.newest()),
  };
  /** Notes a sandboxed checkpoint's root as the newest template; its content key, read once per checkpoint. */
  const noteRoot = (imageAbs: string) => rootTemplates.note(path.join(imageAbs, ROOT_ARCHIVE));
  const takeGuard = (kind: GuardKind = "plain") => {
    const guard = standbys[kind]?.take() ?? null;
    standbys[kind] ??= createGuardStandby(standbyArgv[kind], RESTORE_FDS, criuEnv);
    return guard;
  };
  // Restores prepared ahead, and each sandboxed task's scratch size (what its next restore's is compared with).
  const prepared = createPreparedRestores();
  const scratchSizes = new WeakMap<TaskProcess, string>();
  const prepareRestore = (dumpId: string, imageAbs: string, size: string, rootKey: string | undefined) => {
    // Not for a big /tmp: a prepared restore holds it in memory until the run comes back, or never.
    if ((statSync(path.join(imageAbs, SCRATCH_ARCHIVE), { throwIfNoEntry: false })?.size ?? Infinity) > PREPARE_SCRATCH_MAX_BYTES) return;
    const guard = takeGuard("root");
    if (guard) prepared.prepare(dumpId, guard, [rootArchiveField(guard, path.join(imageAbs, ROOT_ARCHIVE), rootKey), path.join(imageAbs, SCRATCH_ARCHIVE), size]);
  };
  const track = (handle: TaskHandle): TaskProcess => {
    handles.set(handle.proc, handle);
    void handle.proc.exited.finally(() => pidFiles.forget(handle.proc.id));
    return handle.proc;
  };
  /** What to end should this runner die first; written in the background (best effort, like its use). */
  const recordPids = (id: string, pids: Array<number | undefined>) => void pidFiles.record(id, pids.filter((p): p is number => p !== undefined)).catch(() => {});
  const requireCheckpoints = (what: string) => {
    if (!checkpoints.available) {
      throw new WorkloadError("CHECKPOINTS_UNAVAILABLE", `cannot ${what}: checkpoints are unavailable (${checkpoints.reason})`);
    }
  };

  return {
    checkpoints,

    async start(opts: StartTaskOptions) {
      const env = { ...opts.env, UV_USE_IO_URING: "0" };
      if (opts.sandbox && !namespaces.ok) throw new WorkloadError("START_FAILED", `cannot sandbox the task: no PID and mount namespace (${namespaces.reason})`);
      const sandbox = opts.sandbox;
      const root = sandbox ? await taskRootOps(sandbox, opts.cwd, opts.files) : null;
      const [file, args] = namespaces.ok ? namespaceArgv(tools, opts.command, opts.args, sandbox && root ? (command) => taskRootArgv(sandbox, stage, opts.cwd, root, command) : undefined) : [opts.command, opts.args];
      const stdio = namespaces.ok ? (["ignore", "pipe", "pipe", "pipe", "pipe"] as const) : (["ignore", "pipe", "pipe", "pipe"] as const);
      const child = spawn(file, args, { cwd: opts.cwd, env, stdio: [...stdio] });
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", (err) => reject(new WorkloadError("START_FAILED", `cannot start ${file}: ${err.message}`, { cause: err })));
      });
      const pid = child.pid as number;
      let initPid: Promise<number> | undefined;
      const id = `task-${randomUUID()}`;
      recordPids(id, [pid]);
      const handle = track(
        createTaskHandle({
          id,
          child,
          stdout: child.stdio[1] as Readable,
          stderr: child.stdio[2] as Readable,
          ipc: child.stdio[3] as Duplex,
          status: namespaces.ok ? (child.stdio[4] as Readable) : undefined,
          initPid: () => (initPid ??= namespaces.ok ? namespaceInitPid(pid) : Promise.resolve(pid)),
          user: opts.sandbox ? { uid: opts.sandbox.uid, gid: opts.sandbox.gid } : undefined,
          mounts: root?.externals,
        }),
      );
      scratchSizes.set(handle, scratchSize(opts.sandbox));
      if (namespaces.ok) void handles.get(handle)!.parts.initPid().then((init) => recordPids(id, [init]), () => {});
      return handle;
    },

    async checkpoint(proc, imageDir, options) {
      requireCheckpoints("checkpoint");
      const handle = handles.get(proc);
      if (!handle) throw new WorkloadError("UNKNOWN_PROCESS", `task ${proc.id} was not started or restored by this runtime`);
      const dumpId = randomUUID();
      const dumped = await dumpTask(handle, imageDir, { criuPath, criuVersion, workDir, criuEnv, guard: tools, leaveRunning: options?.leaveRunning, verdict: options?.verdict, stopAfter: options?.stopAfter, waitingGuard: takeGuard, dumpId });
      const rootKey = handle.parts.mounts ? noteRoot(path.resolve(imageDir)) : undefined;
      // A sandboxed task that ended with its dump: the restore of its wait's end, here, is prepared now.
      if (handle.parts.mounts && !options?.leaveRunning && !options?.stopAfter) prepareRestore(dumpId, path.resolve(imageDir), scratchSizes.get(proc) ?? scratchSize(undefined), rootKey);
      return dumped;
    },

    async restore(imageDir, opts) {
      requireCheckpoints("restore");
      const id = `restored-${randomUUID()}`;
      const restored = track(await restoreTask(imageDir, opts, { id, criuPath, setprivPath: tools.setpriv, bashPath: tools.bash, workDir, rootDir: stage, scratchDir: scratch, takeGuard, takePrepared: prepared.take, noteRoot, onPids: (pids) => recordPids(id, pids) }));
      scratchSizes.set(restored, scratchSize(opts.sandbox));
      return restored;
    },

    settleDump(imageDir) {
      populateDumpedMemory(path.resolve(imageDir));
    },

    close() {
      prepared.close();
      standbys.plain?.close();
      standbys.root?.close();
    },
  };
}
