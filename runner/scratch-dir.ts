import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { isAlive, startTime } from "./workload/leftovers.ts";

/**
 * A runner process's own scratch under its work dir: dumps being taken and stored, checkpoints being
 * restored — the task's memory in clear while it is there. Each run's dir is removed when its dump
 * or restore is done; one runner killed with SIGKILL cannot, so the dir is named after its owner
 * (`<workDir>/scratch/<pid>-<start time>`) and the next runner that starts on the work dir removes
 * those whose owner is gone (`removeOrphanedScratch`), leaving a live runner's alone. Runners that
 * share a work dir must share a PID namespace (one host's), as for local-checkpoints.ts: an owner
 * not visible here counts as gone.
 */
export async function ownScratchDir(workDir: string): Promise<string> {
  const dir = path.join(workDir, "scratch", `${process.pid}-${await startTime(process.pid)}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Removes the scratch dirs of runner processes that are gone; returns how many it removed. */
export async function removeOrphanedScratch(workDir: string): Promise<number> {
  const root = path.join(workDir, "scratch");
  let removed = 0;
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const [pid, start] = name.split("-");
    if (await isAlive(Number(pid), start)) continue;
    await rm(path.join(root, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}
