import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface GitInfo {
  sha: string;
  /** Commit time, seconds since the epoch. */
  committedAt: number;
  branch: string | null;
}

/** HEAD of the repository holding `dir`, or null when it is not in a git repository. */
export async function readGitInfo(dir: string): Promise<GitInfo | null> {
  try {
    const { stdout } = await run("git", ["-C", dir, "log", "-1", "--format=%H %ct"]);
    const [sha, time] = stdout.trim().split(" ");
    if (!sha || !time) return null;
    const branch = await run("git", ["-C", dir, "rev-parse", "--abbrev-ref", "HEAD"]).then((r) => r.stdout.trim(), () => "");
    return { sha, committedAt: Number(time), branch: branch && branch !== "HEAD" ? branch : null };
  } catch {
    return null;
  }
}
