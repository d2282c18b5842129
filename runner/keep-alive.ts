import type { ClaimedRun } from "../schemas/index.ts";
import { envDigest } from "./env-digest.ts";
import type { TaskProcess } from "./workload/index.ts";

export interface KeepAlivePoolOptions {
  /** Idle kept processes on this runner at most (they hold memory, not slots). Default 10. */
  maxIdle?: number;
  /** An idle kept process is killed after this long without a run. Default 30 s. */
  idleMs?: number;
}

interface Idle {
  proc: TaskProcess;
  /** Runs this process has executed so far. */
  runs: number;
  timer: NodeJS.Timeout;
}

/** A kept process handed to the next run: `runs` it executed before (this one is `runs + 1`). */
export interface ReusedProcess {
  proc: TaskProcess;
  runs: number;
}

/**
 * Opt-in process reuse (`processKeepAlive` in the task's manifest entry): a process that completed a
 * run waits here, idle, for the next run of the same project, environment, deployment (version) and
 * set of variables — the key holds all four, so a process never crosses environments or versions —
 * and is killed after `idleMs`, at `maxRuns`, or when the pool is full. A process that was ever
 * restored from a checkpoint is never kept (its pipes and memory came from another process's life).
 * A reused process keeps its module state, globals, timers and open handles: README "Process reuse".
 */
export function createKeepAlivePool(options: KeepAlivePoolOptions = {}) {
  const maxIdle = options.maxIdle ?? 10;
  const idleMs = options.idleMs ?? 30_000;
  const idle = new Map<string, Idle[]>();
  /** Completed runs per key whose process may come back (their end is being reported), and takes waiting for one. */
  const releasing = new Map<string, number>();
  const waiters = new Map<string, Array<() => void>>();
  const changed = (key: string) => {
    const list = waiters.get(key);
    waiters.delete(key);
    list?.forEach((wake) => wake());
  };
  let closed = false;

  const count = () => [...idle.values()].reduce((n, list) => n + list.length, 0);
  const remove = (key: string, entry: Idle) => {
    const list = idle.get(key);
    const i = list?.indexOf(entry) ?? -1;
    if (i < 0) return false;
    list!.splice(i, 1);
    if (list!.length === 0) idle.delete(key);
    clearTimeout(entry.timer);
    return true;
  };

  return {
    /**
     * After a completed run: keep its process for the next run of the same key when the task opted in,
     * its runs stay under `maxRuns`, it was never restored, and the pool has room. False: kill it.
     */
    offer(claim: ClaimedRun, proc: TaskProcess, state: { runs: number; restored: boolean; detach: () => void }): boolean {
      const setting = keepAliveOf(claim);
      if (closed || !setting || state.restored || claim.resume || state.runs >= setting.maxRuns || count() >= maxIdle) return false;
      state.detach();
      quiet(proc);
      const key = keyOf(claim);
      const entry: Idle = { proc, runs: state.runs, timer: setTimeout(() => remove(key, entry) && void proc.kill().catch(() => {}), idleMs) };
      entry.timer.unref();
      idle.set(key, [...(idle.get(key) ?? []), entry]);
      void proc.exited.then(() => remove(key, entry));
      changed(key);
      return true;
    },
    /**
     * A run of an opted-in task completed and its end is being reported: its process may be offered
     * in a moment. Until the returned function is called, a take for the same key waits for it (up to
     * `RELEASE_WAIT_MS`) instead of starting a fresh process — the slot is already counted free, and
     * under a burst the next claim comes before the report's answer.
     */
    releasing(claim: ClaimedRun, restored: boolean): () => void {
      if (closed || restored || claim.resume || !keepAliveOf(claim)) return () => {};
      const key = keyOf(claim);
      releasing.set(key, (releasing.get(key) ?? 0) + 1);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const left = (releasing.get(key) ?? 1) - 1;
        if (left > 0) releasing.set(key, left);
        else releasing.delete(key);
        changed(key);
      };
    },
    /**
     * A kept process for this claim's key (the most recently kept), or null; while a run of the key
     * is releasing its process, waits for it (bounded). Its channel resumes once the caller listens.
     */
    async take(claim: ClaimedRun): Promise<ReusedProcess | null> {
      const setting = keepAliveOf(claim);
      if (!setting || claim.resume) return null;
      const key = keyOf(claim);
      const giveUpAt = Date.now() + RELEASE_WAIT_MS;
      for (;;) {
        for (let entry = idle.get(key)?.at(-1); entry; entry = idle.get(key)?.at(-1)) {
          remove(key, entry);
          // This task's own limit: a process kept by a task with a higher one stops here.
          if (entry.runs >= setting.maxRuns) {
            void entry.proc.kill().catch(() => {});
            continue;
          }
          const { proc } = entry;
          setImmediate(() => [proc.ipc, proc.stdout, proc.stderr].forEach((s) => s.resume()));
          return { proc, runs: entry.runs };
        }
        const left = giveUpAt - Date.now();
        if (closed || !releasing.get(key) || left <= 0) return null;
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((wake) => {
          waiters.set(key, [...(waiters.get(key) ?? []), wake]);
          timer = setTimeout(wake, left);
        });
        clearTimeout(timer);
      }
    },
    /** Idle kept processes (tests, metrics). */
    size(): number {
      return count();
    },
    async close(): Promise<void> {
      closed = true;
      for (const key of [...waiters.keys()]) changed(key);
      const all = [...idle.entries()].flatMap(([key, list]) => [...list].map((entry) => (remove(key, entry), entry.proc)));
      await Promise.all(all.map((p) => p.kill().catch(() => {})));
    },
  };
}

export type KeepAlivePool = ReturnType<typeof createKeepAlivePool>;

/** How long a claim waits for a process being released before it starts a fresh one (a start costs ~100 ms of CPU, more under load). */
const RELEASE_WAIT_MS = 1_000;

function keepAliveOf(claim: ClaimedRun) {
  return claim.deployment.manifest.tasks.find((t) => t.id === claim.taskId)?.processKeepAlive;
}

/** Never across projects, environments, versions or sets of variables. */
function keyOf(claim: ClaimedRun): string {
  return [claim.project, claim.environment, claim.deployment.id, envDigest(claim.env)].join("\0");
}

const guarded = new WeakSet<TaskProcess>();

/**
 * Once the finished run's session stopped reading (its `detach`), the streams pause: what the process
 * prints while idle waits in the pipe for the next run's session. One no-op error listener per
 * stream stays for the process's life, so a broken pipe while idle never throws in the runner.
 */
function quiet(proc: TaskProcess): void {
  for (const stream of [proc.ipc, proc.stdout, proc.stderr]) {
    if (!guarded.has(proc)) stream.on("error", () => {});
    stream.pause();
  }
  guarded.add(proc);
}
