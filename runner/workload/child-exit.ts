import type { ChildProcess } from "node:child_process";

/** Settles with how `child` ended, also when it already has. */
export function childExit(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

/**
 * SIGKILLs PID 1 of the task's PID namespace (the kernel takes the whole namespace with it), or the
 * spawned child when that PID is not known.
 */
export function killNamespaceInit(initPid: number | undefined, child: ChildProcess): void {
  try {
    if (initPid !== undefined) process.kill(initPid, "SIGKILL");
    else child.kill("SIGKILL");
  } catch {
    // already gone
  }
}
