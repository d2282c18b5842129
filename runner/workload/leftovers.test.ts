import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createPidFiles } from "./leftovers.ts";
import { pollFor } from "./poll.ts";

const started: number[] = [];
afterEach(async () => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
});

function sleeper(): number {
  const child = spawn("sleep", ["600"], { stdio: "ignore", detached: true });
  child.unref();
  started.push(child.pid!);
  return child.pid!;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(spawnSync("cat", [`/proc/${pid}/stat`]).stdout.toString());
  } catch {
    return false;
  }
};

/** A PID that is not running now (a process that already ended). */
function deadPid(): number {
  const done = spawnSync("sh", ["-c", "echo $$"]);
  return Number(done.stdout.toString().trim());
}

describe("pid files of a work dir", () => {
  it("a runtime started on the work dir of a runner that died ends what that runner recorded", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "stasis-pids-"));
    try {
      const previous = createPidFiles(dir);
      const pid = sleeper();
      await previous.record("task-1", [pid]);
      // The recording runner is gone: rewrite the owner line to a PID that has ended.
      const file = path.join(dir, "pids", "task-1.pids");
      const lines = (await readFile(file, "utf8")).split("\n");
      await writeFile(file, [`owner ${deadPid()} 1`, ...lines.slice(1)].join("\n"));

      expect(await createPidFiles(dir).reap()).toBe(1);
      await pollFor(() => (alive(pid) ? undefined : true), 5000, "the leftover to die");
      expect(await readdir(path.join(dir, "pids"))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("leaves the processes of a runner that is still alive alone, and never kills a reused PID", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "stasis-pids-"));
    try {
      const mine = sleeper();
      await createPidFiles(dir).record("task-live", [mine]);
      const other = sleeper();
      // A dead owner, but the PID's start time is not the recorded one: the kernel gave the PID to someone else.
      await writeFile(path.join(dir, "pids", "task-reused.pids"), `owner ${deadPid()} 1\n${other} 1\n`);

      expect(await createPidFiles(dir).reap()).toBe(0);
      expect(alive(mine)).toBe(true);
      expect(alive(other)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
