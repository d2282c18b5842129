import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * Mounts the task's namespace copied from the host that will be gone by restore time: runc
 * containers' (`/run/runc/…`) and CRIU's own restore scratch (`/tmp/.criu…`). CRIU refuses to
 * rebuild a mount namespace whose mount points are missing, so they are detached before a dump.
 */
const TRANSIENT = [/^\/run\/runc\//, /^\/tmp\/\.criu/];

/**
 * Detaches those mounts inside the task's mount namespace. Done at dump time, not at start: the
 * short-lived `umount` joins the task's PID namespace (its /proc is that namespace's) and would
 * otherwise take PIDs before the task's own.
 */
export async function dropTransientMounts(initPid: number): Promise<void> {
  const mountinfo = await readFile(`/proc/${initPid}/mountinfo`, "utf8");
  const targets = mountinfo
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => Boolean(point) && TRANSIENT.some((re) => re.test(point)))
    .reverse();
  if (targets.length === 0) return;
  await run("nsenter", ["-t", String(initPid), "-m", "-p", "--", "umount", "-l", ...targets]).catch(() => {
    // A mount that vanished meanwhile: nothing left to detach; CRIU reports anything else.
  });
}
