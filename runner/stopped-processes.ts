import type { HeldCall } from "./session/session.ts";
import type { TaskProcess } from "./workload/index.ts";

/** A suspended run's own process, dumped and left stopped, with what its restore would have read from `resume.json`. */
export interface StoppedProcess {
  proc: TaskProcess;
  /** The call of the wait it was stopped in (null: stopped while running). */
  callId: number | null;
  /** Its calls that came during the dump, not asked of the server yet. */
  calls: HeldCall[];
}

export interface StoppedProcessesOptions {
  /** How much memory the kept processes may hold at most, counted by the size of their dumps (about their private memory). */
  maxBytes: number;
  /** Each is killed after this long, resumed or not. Default 60 s: what it is for is a wait that ends soon. */
  maxAgeMs?: number;
}

export const STOPPED_MAX_AGE_MS = 60_000;

/**
 * Processes of suspended runs kept stopped (SIGSTOP) in memory, each under its checkpoint's location:
 * a resume claimed here continues the process where it stopped (a signal) instead of having CRIU
 * rebuild it from the dump. Stopped, a process takes no CPU and no slot; it takes memory, so an
 * operator opts in with a budget, and each goes after `maxAgeMs` or when newer ones need the room
 * (oldest first). The stored checkpoint stays the run's durable state: a resume on another runner, or
 * after this runner let go of the process, restores that — and a kept process is only ever continued
 * by the runner that claimed the resume of exactly its checkpoint, so the two never both run.
 */
export function createStoppedProcesses(options: StoppedProcessesOptions) {
  const maxAgeMs = options.maxAgeMs ?? STOPPED_MAX_AGE_MS;
  /** Oldest first (a Map keeps insertion order). */
  const kept = new Map<string, { stopped: StoppedProcess; bytes: number; timer: NodeJS.Timeout; gone: boolean }>();
  let keptBytes = 0;
  let closed = false;

  const release = (location: string): StoppedProcess | null => {
    const entry = kept.get(location);
    if (!entry) return null;
    kept.delete(location);
    keptBytes -= entry.bytes;
    clearTimeout(entry.timer);
    return entry.gone ? null : entry.stopped;
  };
  const kill = (location: string): Promise<void> => release(location)?.proc.kill().catch(() => {}) ?? Promise.resolve();

  return {
    /** Keeps `stopped` for a resume of `location` here; false (nothing kept): over the budget, or closing — the caller kills it. */
    keep(location: string, stopped: StoppedProcess, sizeBytes: number): boolean {
      if (closed || sizeBytes > options.maxBytes) return false;
      const entry = { stopped, bytes: sizeBytes, timer: setTimeout(() => void kill(location), maxAgeMs), gone: false };
      entry.timer.unref();
      kept.set(location, entry);
      keptBytes += sizeBytes;
      void stopped.proc.exited.then(() => {
        entry.gone = true;
        if (kept.get(location) === entry) release(location);
      });
      for (const [oldest] of kept) {
        if (keptBytes <= options.maxBytes) break;
        void kill(oldest);
      }
      return true;
    },
    /** The kept process of `location`, now the caller's (to thaw); null: none is kept here (never was, killed, or it died). */
    take: release,
    /** Kills the kept process of `location`, if any (its checkpoint is deleted: the run ended or moved on). */
    drop: kill,
    /** How many are kept. */
    count: () => kept.size,
    /** Kills every kept process (the runner closes: none outlives it). */
    async close(): Promise<void> {
      closed = true;
      await Promise.all([...kept.keys()].map(kill));
    },
  };
}

export type StoppedProcesses = ReturnType<typeof createStoppedProcesses>;
