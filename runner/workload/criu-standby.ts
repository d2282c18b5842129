import { spawn, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";

/**
 * One criu guard (criu-guard.ts) started ahead, waiting for its command on stdin, with the pipes a
 * restore hands criu already open. A restore that takes it skips the fork of the runner (4 ms for a
 * runner of ~100 MB, 14 ms for one of ~260 MB: the fork copies its page tables) and the guard's own
 * start (~4 ms) — bench/suspend-resume, twelfth round. Waiting, it keeps neither the runner's event
 * loop alive nor anything else: it dies with the runner (its parent-death signal), and `close` ends it.
 */
export interface GuardStandby {
  /** The waiting guard (stdio: stdin, stdout, stderr and `extraFds` pipes), or null: spawn one yourself. A new one starts later. */
  take(): ChildProcess | null;
  /** Ends the waiting guard and starts no other. */
  close(): void;
}

/** Why later: a fork of the runner while a restore runs would hold up the restored run's first steps. */
const REFILL_AFTER_MS = 250;

/** A guard that ended while it waited (one that cannot mount its root, say) is started again later each time, up to this. */
const REFILL_AFTER_EXIT_MAX_MS = 60_000;

/**
 * `argv`: the guard's command line (criu-guard.ts: `standbyGuard`, `rootStandbyGuard`), whose owner (the
 * runtime's work dir) shows in `ps`: whose it is.
 */
export function createGuardStandby(argv: () => [string, string[]], extraFds: number, env?: NodeJS.ProcessEnv): GuardStandby {
  let waiting: ChildProcess | null = null;
  let refill: NodeJS.Timeout | null = null;
  let closed = false;
  let exitsWhileWaiting = 0;

  const streams = (child: ChildProcess) => child.stdio.filter((s): s is NonNullable<typeof s> => s !== null) as unknown as Socket[];
  const start = () => {
    refill = null;
    if (closed) return;
    const [file, args] = argv();
    const child = spawn(file, args, { env, stdio: ["pipe", "pipe", "pipe", ...Array.from({ length: extraFds }, () => "pipe" as const)] });
    child.once("error", () => {});
    child.once("exit", () => {
      if (waiting !== child) return;
      waiting = null;
      exitsWhileWaiting += 1;
      schedule(Math.min(REFILL_AFTER_EXIT_MAX_MS, REFILL_AFTER_MS * 2 ** exitsWhileWaiting));
    });
    child.unref();
    for (const stream of streams(child)) stream.unref?.();
    waiting = child;
  };
  const schedule = (afterMs = REFILL_AFTER_MS) => {
    if (closed || refill) return;
    refill = setTimeout(start, afterMs);
    refill.unref();
  };
  schedule();

  return {
    take() {
      const child = waiting;
      waiting = null;
      schedule();
      if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return null;
      exitsWhileWaiting = 0;
      child.ref();
      for (const stream of streams(child)) stream.ref?.();
      return child;
    },
    close() {
      closed = true;
      if (refill) clearTimeout(refill);
      refill = null;
      waiting?.stdin?.end();
      waiting = null;
    },
  };
}
