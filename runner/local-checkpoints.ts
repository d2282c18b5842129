import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { CheckpointExpectation, CheckpointStore } from "./checkpoint-store/index.ts";
import { isAlive, startTime } from "./workload/leftovers.ts";

/**
 * The dumps this runner stored, kept on its own disk in clear for a resume here: a resume claimed
 * where the checkpoint was taken restores from the dump as CRIU wrote it, with no fetch, unseal,
 * zstd or tar (bench/suspend-resume: most of a resume's time above CRIU's own restore).
 *
 * Kept under `<workDir>/local-checkpoints/<sha256 of the location>`, so any runner sharing the work
 * dir (runners of one host) takes it by one rename, and only one of them can. A kept dump is the
 * process's memory in clear: the work dir is the runner's alone (0700, hidden from sandboxed tasks),
 * each is removed when it is resumed, deleted or pushed out by newer ones (at most `maxBytes` kept
 * by one runner), and the sealed copy in the store stays the run's durable checkpoint — a resume
 * anywhere else, or after this runner is gone, fetches that one.
 *
 * Each kept dump names its keeper beside it (`<sha256>.keeper`: its pid and start time), so that a
 * runner killed with SIGKILL, which cannot remove what it kept, leaves it only until a runner starts
 * on that work dir (`removeOrphanedDumps`); the dumps of a keeper still running are left alone.
 */
export interface LocalCheckpoints {
  /** Keeps `dir` (`images/` and `resume.json`, stored at `location`), moved into the local cache by a rename. false: not kept (too big, or another filesystem); `dir` is the caller's still. */
  keep(location: string, dir: string, sizeBytes: number): Promise<boolean>;
  /**
   * Moves the kept dump of `location` into `dir` (a resume here, or the server did not take the
   * checkpoint and the dump is the session's again); false: none is kept (another runner took it, or
   * it was pushed out): fetch the sealed copy.
   */
  take(location: string, dir: string): Promise<boolean>;
  /** Removes the kept dump of `location`, if this runner kept one (the process it was taken from goes on). */
  discard(location: string): Promise<void>;
  /** The store, with `delete` dropping a kept dump of the checkpoint too. */
  store: CheckpointStore;
  /** Removes every dump this runner kept (the runner closes: what it kept never outlives it). */
  close(): Promise<void>;
}

export interface LocalCheckpointsOptions {
  /** The runner's work dir (0700). */
  workDir: string;
  /** How many bytes of dumps this runner keeps at most; the oldest go first. */
  maxBytes: number;
}

export function createLocalCheckpoints(inner: CheckpointStore, options: LocalCheckpointsOptions): LocalCheckpoints {
  const root = path.join(options.workDir, "local-checkpoints");
  /** What this runner kept, oldest first (a Map keeps insertion order). Another runner may have taken some. */
  const kept = new Map<string, number>();
  let keptBytes = 0;
  const dirOf = (location: string) => path.join(root, createHash("sha256").update(location).digest("hex"));
  const keeperFileOf = (location: string) => dirOf(location) + KEEPER_SUFFIX;
  let self: Promise<string> | undefined;

  const forget = (location: string) => {
    const bytes = kept.get(location);
    if (bytes === undefined) return;
    kept.delete(location);
    keptBytes -= bytes;
  };
  const drop = async (location: string) => {
    forget(location);
    await rm(dirOf(location), { recursive: true, force: true });
    await rm(keeperFileOf(location), { force: true });
  };

  /** The dump of `location` was moved out (by this runner): it is no longer kept, nor its keeper named (not awaited: a resume is waiting). */
  const taken = (location: string) => {
    forget(location);
    void rm(keeperFileOf(location), { force: true }).catch(() => {});
  };

  /** Moves the kept dump of `location` into `destDir` (one rename per entry); false when there is none here (or another runner took it first). */
  async function take(location: string, destDir: string): Promise<boolean> {
    const dir = dirOf(location);
    // Onto a missing or empty `destDir` in one rename (the usual case, a resume's fresh dir), which also
    // decides which of the runners sharing the work dir gets it: the others find nothing there any more.
    const whole = await rename(dir, destDir).then(
      () => true,
      (error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? false : null),
    );
    if (whole !== null) {
      if (whole) taken(location);
      return whole;
    }
    // Claimed by a rename first: of runners sharing the work dir, one gets it.
    const mine = `${dir}.taken-${process.pid}-${Math.random().toString(36).slice(2)}`;
    if (!(await rename(dir, mine).then(() => true, () => false))) return false;
    taken(location);
    try {
      // Into an empty (or missing) `destDir` in one rename; else entry by entry.
      if (await rmdir(destDir).then(() => true, (error: NodeJS.ErrnoException) => error.code === "ENOENT")) {
        await rename(mine, destDir);
        return true;
      }
      for (const entry of await readdir(mine)) await rename(path.join(mine, entry), path.join(destDir, entry));
      await rmdir(mine);
      return true;
    } catch {
      // Half moved: neither copy is whole any more; the caller fetches the sealed one into a clean dir.
      await rm(mine, { recursive: true, force: true });
      await rm(destDir, { recursive: true, force: true });
      await mkdir(destDir, { recursive: true, mode: 0o700 });
      return false;
    }
  }

  return {
    async keep(location, dir, sizeBytes) {
      if (sizeBytes > options.maxBytes) return false;
      await mkdir(root, { recursive: true, mode: 0o700 });
      const identity = await (self ??= startTime(process.pid).then((start) => `${process.pid} ${start}`));
      // The keeper is named before the dump is in place: a dump without one is always an orphan.
      await writeFile(keeperFileOf(location), identity, { mode: 0o600 });
      const target = dirOf(location);
      if (!(await rename(dir, target).then(() => true, () => false))) {
        await rm(keeperFileOf(location), { force: true });
        return false;
      }
      kept.set(location, sizeBytes);
      keptBytes += sizeBytes;
      for (const [oldest] of kept) {
        if (keptBytes <= options.maxBytes) break;
        await drop(oldest);
      }
      return true;
    },
    store: {
      put: (key, imageDir, seal, signal) => inner.put(key, imageDir, seal, signal),
      get: (location: string, destDir: string, expect: CheckpointExpectation) => inner.get(location, destDir, expect),
      async delete(location) {
        await drop(location);
        await inner.delete(location);
      },
      list: () => inner.list(),
    },
    take,
    discard: drop,
    async close() {
      await Promise.all([...kept.keys()].map(drop));
    },
  };
}

const KEEPER_SUFFIX = ".keeper";
const DUMP_NAME = /^[0-9a-f]{64}$/;
const TAKING_NAME = /^[0-9a-f]{64}\.taken-(\d+)-/;

async function keeperAlive(keeperFile: string): Promise<boolean> {
  const [pid, start] = (await readFile(keeperFile, "utf8").catch(() => "")).split(" ");
  return isAlive(Number(pid), start);
}

/**
 * Removes the dumps kept under `workDir` by runners that are gone (killed: one that closes removes its
 * own), and half-taken ones whose taker is gone; returns how many dumps it removed. A runner calls it
 * as it starts. Runners sharing the work dir must share a PID namespace too (one host's): a keeper
 * not visible here counts as gone, and its resumes fetch the sealed copy instead.
 */
export async function removeOrphanedDumps(workDir: string): Promise<number> {
  const root = path.join(workDir, "local-checkpoints");
  const names = await readdir(root).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    const full = path.join(root, name);
    const taking = TAKING_NAME.exec(name);
    if (taking) {
      if ((await startTime(Number(taking[1]))) === "") await rm(full, { recursive: true, force: true });
    } else if (DUMP_NAME.test(name)) {
      if (await keeperAlive(full + KEEPER_SUFFIX)) continue;
      await rm(full, { recursive: true, force: true });
      await rm(full + KEEPER_SUFFIX, { force: true });
      removed++;
    } else if (name.endsWith(KEEPER_SUFFIX) && !names.includes(name.slice(0, -KEEPER_SUFFIX.length))) {
      // A keeper named without its dump: the dump was taken, or never moved in.
      if (!(await keeperAlive(full))) await rm(full, { force: true });
    }
  }
  return removed;
}
