import type { ChildProcess } from "node:child_process";
import { handAhead, PREPARED } from "./criu-guard.ts";

/**
 * Root standby guards handed a sandboxed checkpoint's part as soon as its dump is taken
 * (criu-guard.ts ROOT_STANDBY_GUARD): by the time the run's wait ends and it is restored here, its
 * root and scratch are already filled, and the restore only runs criu (~18–23 ms less on a 2-core VM:
 * bench/suspend-resume, twentieth round). Each holds a bash and the checkpoint's root and scratch in
 * tmpfs memory, so only the newest `max` are kept; an older one is let go (its stdin closed: it exits
 * having run nothing, and its mount namespace goes with it).
 */
export interface PreparedRestores {
  /** Hands `guard` (a waiting root standby guard) the checkpoint's part: `[root archive, scratch archive, size]`. */
  prepare(dumpId: string, guard: ChildProcess, part: [string, string, string]): void;
  /** The guard prepared for `dumpId` with scratch mounts of `size`, once it has filled them; null: none, it failed, or another size. */
  take(dumpId: string | undefined, size: string): Promise<ChildProcess | null>;
  /** Lets every prepared guard go. */
  close(): void;
}

interface Prepared {
  guard: ChildProcess;
  size: string;
  ready: Promise<boolean>;
}

export function createPreparedRestores(max = 2): PreparedRestores {
  const prepared = new Map<string, Prepared>();
  const letGo = (entry: Prepared) => entry.guard.stdin?.end();

  return {
    prepare(dumpId, guard, part) {
      const ready = new Promise<boolean>((resolve) => {
        let out = "";
        const onData = (chunk: string) => {
          out += chunk;
          if (!out.includes(`${PREPARED}\n`)) return;
          guard.stdout!.off("data", onData);
          resolve(true);
        };
        guard.stdout!.setEncoding("utf8").on("data", onData);
        guard.once("exit", () => {
          if (prepared.get(dumpId)?.guard === guard) prepared.delete(dumpId);
          resolve(false);
        });
      });
      try {
        handAhead(guard, part);
      } catch {
        return; // a NUL in a path: the guard's stdin is closed, and the restore takes the usual way
      }
      prepared.set(dumpId, { guard, size: part[2], ready });
      for (const [id, entry] of prepared) {
        if (prepared.size <= max) break;
        prepared.delete(id);
        letGo(entry);
      }
    },

    async take(dumpId, size) {
      const entry = dumpId === undefined ? undefined : prepared.get(dumpId);
      if (!entry) return null;
      prepared.delete(dumpId!);
      if (entry.size !== size || !(await entry.ready) || entry.guard.exitCode !== null || entry.guard.signalCode !== null) {
        letGo(entry);
        return null;
      }
      return entry.guard;
    },

    close() {
      for (const entry of prepared.values()) letGo(entry);
      prepared.clear();
    },
  };
}
