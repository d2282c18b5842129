import { accessSync, constants } from "node:fs";
import { lstat, open, readdir, readlink, realpath, stat } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import { sharedLibraries } from "../runtime-layer.ts";
import type { TarEntry } from "../tar-writer.ts";

/** Files keyed by their path in the image, so a library two tools need is added once. */
export class EntrySet {
  private readonly byPath = new Map<string, TarEntry>();
  add(entry: TarEntry): void {
    const path = entry.path.replace(/^\/+/, "");
    if (!this.byPath.has(path)) this.byPath.set(path, { ...entry, path });
  }
  get entries(): TarEntry[] {
    return [...this.byPath.values()];
  }
  get size(): number {
    return this.byPath.size;
  }
}

/**
 * A host path as it sits on disk once the directories on the way are resolved: on a merged-/usr
 * Debian `/lib/x86_64-linux-gnu/libc.so.6` is `/usr/lib/x86_64-linux-gnu/libc.so.6`. The image
 * carries `/bin`, `/lib`, `/lib64`, `/sbin` as the same symlinks.
 */
export async function canonicalPath(path: string): Promise<string> {
  return join(await realpath(dirname(path)), basename(path));
}

const modeOf = (mode: number) => (mode & 0o111 ? 0o755 : 0o644);

/** Adds one host file (its content, followed through symlinks) at its canonical path. */
export async function addHostFile(set: EntrySet, hostPath: string, imagePath?: string): Promise<void> {
  const real = await realpath(hostPath);
  const s = await stat(real);
  set.add({ type: "file", path: imagePath ?? (await canonicalPath(hostPath)), source: real, size: s.size, mode: modeOf(s.mode) });
}

async function isElf(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const { buffer } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    return buffer.toString("latin1") === "\x7fELF";
  } finally {
    await handle.close();
  }
}

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin").split(":")) {
    if (dir.includes("node_modules")) continue; // npx puts package bins first on PATH
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return null;
}

/** A program found on PATH and every shared library `ldd` says it loads. */
export async function addProgram(set: EntrySet, name: string): Promise<string> {
  const path = findOnPath(name);
  if (!path) throw new Error(`${name} is not a program on PATH (${process.env.PATH})`);
  await addHostFile(set, path);
  if (await isElf(path)) for (const lib of await sharedLibraries(path)) await addHostFile(set, lib);
  return path;
}

/**
 * A directory tree copied as it is (files, symlinks, empty dirs), under `imageDir`. `skip` gets the
 * path relative to `hostDir` and keeps what it returns true for out.
 */
export async function addTree(set: EntrySet, hostDir: string, imageDir: string, skip: (rel: string, isDir: boolean) => boolean = () => false): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const full = join(dir, name);
      const rel = relative(hostDir, full);
      const s = await lstat(full);
      if (skip(rel, s.isDirectory())) continue;
      const path = join(imageDir, rel);
      if (s.isSymbolicLink()) set.add({ type: "symlink", path, target: await readlink(full) });
      else if (s.isDirectory()) {
        set.add({ type: "dir", path, mode: 0o755 });
        await walk(full);
      } else if (s.isFile()) set.add({ type: "file", path, source: full, size: s.size, mode: modeOf(s.mode) });
    }
  };
  await walk(hostDir);
}
