import type { ChildProcess } from "node:child_process";
import { pidRunning } from "./pid-alive.ts";

const CHECK_EVERY_MS = 1_000;
const GRACE_MS = 5_000;

/**
 * A restored task's `criu restore` (under its guard, `guard`) exits once the task's namespace init
 * does. One that does not (CRIU failed after the task resumed and did not exit) would hold the task's
 * sockets open and its run's lease alive with no process behind it: once the init has been gone for
 * `GRACE_MS`, the guard is told to end criu and its tree.
 */
export function watchRestoredInit(initPid: number, guard: ChildProcess): void {
  let goneSince: number | undefined;
  const timer = setInterval(async () => {
    if (guard.exitCode !== null || guard.signalCode !== null) return clearInterval(timer);
    if (await pidRunning(initPid)) return;
    goneSince ??= Date.now();
    if (Date.now() - goneSince < GRACE_MS) return;
    clearInterval(timer);
    guard.kill("SIGTERM");
  }, CHECK_EVERY_MS).unref();
  guard.once("exit", () => clearInterval(timer));
}
