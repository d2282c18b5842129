import type { TaskSandbox } from "./task-sandbox.ts";
import type { Duplex, Readable } from "node:stream";

/** How a task process ended. `signal` is set when it was killed (or checkpointed away). */
export interface TaskExit {
  code: number | null;
  signal: string | null;
  /** Why the runtime ended the task, when it knows better than the signal (e.g. its memory limit). */
  reason?: { name: string; message: string };
}

/** A task's machine: cpu in cores, memory in MB (the manifest's `machine`). */
export interface MachineLimits {
  cpu: number;
  memory: number;
}

/** One running task process, started fresh or restored from a checkpoint. */
export interface TaskProcess {
  readonly id: string;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** fd 3 of the task: a socket carrying newline-delimited JSON (framing is the caller's). */
  readonly ipc: Duplex;
  /** Settles once the process is gone: it exited, was killed, or was checkpointed (then SIGKILL). */
  readonly exited: Promise<TaskExit>;
  /** SIGKILL the task (its whole PID namespace) and wait until it is gone. */
  kill(): Promise<void>;
  /** Continues a task that a dump left stopped (`CheckpointOptions.stopAfter`); runtimes with `checkpoints.stops` only. */
  thaw?(): Promise<void>;
}

export interface StartTaskOptions {
  command: string;
  args: string[];
  cwd: string;
  /** The task's whole environment (`UV_USE_IO_URING=0` is always added). */
  env: Record<string, string>;
  /** The unpacked image's root filesystem (runtimes that run the image's own rootfs, e.g. runc). */
  rootfs?: string;
  /** Limits for runtimes that enforce them (runc: a cgroup; container: the container's). */
  machine?: MachineLimits;
  /** The deployment's image, for runtimes that run it through a container engine (which fetches it by digest). */
  image?: { ref: string; digest: string };
  /**
   * Host files the task reads by their absolute path (e.g. a config file named in `args`). Runtimes
   * that run the task on its image's root bind each one read-only at the same path.
   */
  files?: string[];
  /** Run the task as an unprivileged user that sees only what it needs (task-sandbox.ts); needs root. */
  sandbox?: TaskSandbox;
}

export interface RestoreTaskOptions {
  cwd: string;
  /** As for start; a runc restore may use another unpacked copy of the same image. */
  rootfs?: string;
  machine?: MachineLimits;
  /** As for start; a container restore fetches the image from here when its digest is the checkpoint's. */
  image?: { ref: string; digest: string };
  /**
   * The sandbox this runner would give the task now. A sandboxed checkpoint may bind from the host
   * only what this sandbox would (absent: the system dirs and the app dir); anything else is refused.
   */
  sandbox?: TaskSandbox;
}

export interface CheckpointOptions {
  leaveRunning?: boolean;
  /**
   * Decided while the dump runs (runtimes with `checkpoints.verdicts`): the task stays frozen after
   * the dump until this settles; true ends it as any dump does, false (or a rejection) lets it go on
   * as if no dump had begun, and `checkpoint` rejects with DUMP_DECLINED.
   */
  verdict?: Promise<boolean>;
  /**
   * Instead of ending, the dumped task stays alive, stopped (SIGSTOP, every process of it), with its
   * state as dumped and its sockets open: `TaskProcess.thaw` continues it (runtimes with
   * `checkpoints.stops`). A declined verdict lets it go on at once, as without this.
   */
  stopAfter?: boolean;
}

export interface CheckpointResult {
  dumpMs: number;
  sizeBytes: number;
  /** When each of the runtime's steps of the dump ended (ms since it began), for profiles. */
  steps?: Record<string, number>;
}

export interface CheckpointSupport {
  available: boolean;
  /** Why checkpoints are unavailable, e.g. "criu not found" or "criu check failed: …". */
  reason?: string;
  /** `checkpoint` takes a `verdict`: a dump may begin before it is known whether the task is to end. */
  verdicts?: boolean;
  /** `checkpoint` takes `stopAfter`: a dumped task may be kept, stopped, and thawed instead of restored. */
  stops?: boolean;
}

/** Runs task processes and, when it can, freezes them into image dirs and brings them back. */
export interface WorkloadRuntime {
  readonly checkpoints: CheckpointSupport;
  start(opts: StartTaskOptions): Promise<TaskProcess>;
  /**
   * Dumps the task into `imageDir` (created if missing); the process is gone afterwards, unless
   * `leaveRunning` (CRIU's `--leave-running`: a safety checkpoint of a run that goes on here).
   */
  checkpoint(proc: TaskProcess, imageDir: string, options?: CheckpointOptions): Promise<CheckpointResult>;
  /** Restores a checkpoint written by any runtime instance, with fresh stdout/stderr/ipc pipes. */
  restore(imageDir: string, opts: RestoreTaskOptions): Promise<TaskProcess>;
  /**
   * What a dump's images get once the task's slot is free, before they are stored or restored (process and runc:
   * its memory marked to be allocated at once by the restore, populate-dumped-memory.ts); a restore does it too,
   * for a dump that did not get it. Optional.
   */
  settleDump?(imageDir: string): void;
  /** Ends what the runtime keeps ready for the next restore (the process runtime: a criu guard). Optional; tasks are not touched. */
  close?(): void;
}
