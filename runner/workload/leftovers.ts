import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Pid files of what a runtime runs — a task's wrapper and namespace init, a `criu` — one file per
 * process tree under `<workDir>/pids/`, so that the next runtime on the same work dir can end what a
 * runner killed with SIGKILL left behind (PR_SET_PDEATHSIG covers most of it; this covers the rest:
 * a tree whose wrapper was already gone, a machine's late reaping). Each line is a PID with its
 * start time (field 22 of /proc/PID/stat), so a PID the kernel reused is never killed; each file
 * names its owner (the runner process) the same way, so the files of a runner still alive are left
 * alone.
 */
export function createPidFiles(workDir: string) {
  const dir = path.join(workDir, "pids");
  let owner: string | undefined;
  let made: Promise<unknown> | undefined;

  async function ownerLine(): Promise<string> {
    owner ??= `${process.pid} ${await startTime(process.pid)}`;
    return owner;
  }

  /** Writes of one file happen one after another. */
  const chains = new Map<string, Promise<void>>();
  function queue(id: string, step: () => Promise<void>, last = false): Promise<void> {
    const next = (chains.get(id) ?? Promise.resolve()).then(step, step);
    if (last) chains.delete(id);
    else chains.set(id, next.catch(() => {}));
    return next;
  }

  return {
    /** Records the PIDs of one process tree under `id` (a later call adds to them). */
    record(id: string, pids: number[]): Promise<void> {
      return queue(id, async () => {
        made ??= mkdir(dir, { recursive: true });
        await made;
        const lines = await Promise.all(pids.map(async (pid) => `${pid} ${await startTime(pid)}`));
        const file = path.join(dir, `${id}.pids`);
        const previous = await readFile(file, "utf8").catch(async () => `owner ${await ownerLine()}\n`);
        await writeFile(file, previous + lines.map((l) => `${l}\n`).join(""));
      });
    },
    forget(id: string): Promise<void> {
      return queue(id, () => rm(path.join(dir, `${id}.pids`), { force: true }), true);
    },
    /** SIGKILLs every process recorded by a runner that is gone; returns how many were still alive. */
    async reap(): Promise<number> {
      const files = await readdir(dir).catch(() => [] as string[]);
      let killed = 0;
      for (const name of files.filter((f) => f.endsWith(".pids"))) {
        const file = path.join(dir, name);
        const [head, ...rest] = (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean);
        const ownerMatch = /^owner (\d+) (\d+)$/.exec(head ?? "");
        if (ownerMatch && (await isAlive(Number(ownerMatch[1]), ownerMatch[2]))) continue;
        for (const line of rest) {
          const [pid, start] = line.split(" ");
          if (!(await isAlive(Number(pid), start))) continue;
          try {
            process.kill(Number(pid), "SIGKILL");
            killed++;
          } catch {
            // gone meanwhile
          }
        }
        await rm(file, { force: true });
      }
      return killed;
    },
  };
}

export type PidFiles = ReturnType<typeof createPidFiles>;

/** Field 22 of /proc/PID/stat (after the parenthesised command, which may hold spaces); "" when gone. */
export async function startTime(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
}

/** Whether PID is still the process that had start time `start` (not gone, not a reused PID). */
export async function isAlive(pid: number, start: string | undefined): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1 || !start) return false;
  const now = await startTime(pid);
  return now !== "" && now === start;
}
