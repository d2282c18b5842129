import { requireRunRuntime } from "./run-runtime.ts";

/**
 * Registers a compensation. When the attempt fails, compensations run in reverse order of
 * registration, each once; a compensation's own failure is logged and does not stop the others.
 */
export function rollback(compensate: () => unknown | Promise<unknown>, name = compensate.name || "rollback"): void {
  requireRunRuntime("rollback").registerCompensation(compensate, name);
}
