import { lstat, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";

const TEMP_PREFIX = "ctrd-checkpoint";

/**
 * containerd (1.6 to 2.x) restores a container from a checkpoint by unpacking it into a temp dir of
 * its own, `ctrd-checkpoint*` under its $XDG_RUNTIME_DIR (else $TMPDIR, else /tmp), and never
 * removes that dir (containerd#10166): every restore on Docker left the task's memory, in clear, on
 * the host for good (~45 MB each). This removes containerd's copy of one dump: the temp dir whose
 * CRIU inventory is byte for byte the dump's (it records the dump's time and ids, so no two dumps
 * share one). Returns the dirs it removed.
 */
export async function removeContainerdCopy(imagesDir: string, tempDirs?: string[]): Promise<string[]> {
  const copies = await containerdCopies(imagesDir, tempDirs);
  for (const dir of copies) await rm(dir, { recursive: true, force: true });
  return copies;
}

/** containerd's temp dirs holding a copy of the dump in `imagesDir`. */
export async function containerdCopies(imagesDir: string, tempDirs?: string[]): Promise<string[]> {
  const ours = await readFile(path.join(imagesDir, "inventory.img")).catch(() => null);
  if (!ours) return [];
  const copies: string[] = [];
  for (const root of tempDirs ?? (await containerdTempDirs())) {
    for (const name of await readdir(root).catch(() => [])) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      const dir = path.join(root, name);
      // A real dir only: a symlink planted under that name is never followed.
      if (!(await lstat(dir).catch(() => null))?.isDirectory()) continue;
      const theirs = await readFile(path.join(dir, "inventory.img")).catch(() => null);
      if (theirs?.equals(ours)) copies.push(dir);
    }
  }
  return copies;
}

/** Where the containerd processes on this host make their temp dirs; /tmp when none is seen (a remote engine's leaves nothing here). */
export async function containerdTempDirs(): Promise<string[]> {
  const dirs = new Set<string>();
  for (const pid of await readdir("/proc").catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue;
    const comm = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
    if (comm.trim() !== "containerd") continue;
    const environ = await readFile(`/proc/${pid}/environ`, "utf8").catch(() => "");
    const env = new Map(environ.split("\0").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)] as const));
    dirs.add(env.get("XDG_RUNTIME_DIR") || env.get("TMPDIR") || "/tmp");
  }
  return dirs.size > 0 ? [...dirs] : ["/tmp"];
}
