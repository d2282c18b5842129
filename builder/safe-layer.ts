import { lstat, readdir, rm } from "node:fs/promises";
import { join, posix } from "node:path";
import { list as listTar, x as extractTar } from "tar";
import { BuilderError } from "./errors.ts";

/**
 * Layers are unpacked as root, so every path in one is checked against the unpack root before
 * anything is written or deleted (DESIGN.md, trust boundaries). The rules, one per refusal:
 *
 * - an entry path (whiteouts included) or a hardlink target is relative and has no `..`;
 * - nothing is written, linked or deleted *through* a symlink: no parent component of an entry, a
 *   whiteout's directory or a hardlink target is a symlink (one of a lower layer, or one this
 *   layer creates). A symlink may point at an absolute path (read inside the image's root), but
 *   not climb above the root with `..`;
 * - whiteouts are `.wh.<name>` (deletes `<name>` beside it) and `.wh..wh..opq` (empties its
 *   directory); other `.wh..wh.*` names, `.wh..` and `.wh...` are refused.
 *
 * The checks run over the whole (digest-verified) layer file before its first write; node-tar's own
 * checks (no `..`, no extraction through symlinks) stay on as a second line. Nothing here throws
 * from inside a tar callback: a violation is recorded and thrown after the stream ends, so a bad
 * layer fails its own fetch, never the process that unpacks it.
 */

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_WHITEOUT = ".wh..wh..opq";

export const unsafeLayer = (layer: string, message: string) => new BuilderError("UNSAFE_LAYER", `layer ${layer} is refused: ${message}`);

/** `./a//b/` → `a/b`; "" is the root. Throws for absolute paths, `..` and NUL. */
export function normalizeEntryPath(raw: string, what: string): string {
  if (raw.includes("\0")) throw new Error(`${what} ${JSON.stringify(raw)} contains a NUL byte`);
  if (raw.startsWith("/")) throw new Error(`${what} ${JSON.stringify(raw)} is absolute (entries must be relative to the image root)`);
  const parts = raw.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new Error(`${what} ${JSON.stringify(raw)} contains '..' (it would reach outside the image root)`);
  return parts.join("/");
}

/** `a/b/c` → [`a`, `a/b`] (with `self`: also `a/b/c`). */
function prefixes(path: string, self: boolean): string[] {
  const parts = path === "" ? [] : path.split("/");
  const out: string[] = [];
  for (let i = 1; i < parts.length + (self ? 1 : 0); i++) out.push(parts.slice(0, i).join("/"));
  return out;
}

export interface Whiteout {
  /** Directory the whiteout sits in, relative to the root ("" = the root). */
  dir: string;
  /** The name it deletes, or null for an opaque whiteout (empty the directory). */
  name: string | null;
}

export interface LayerPlan {
  whiteouts: Whiteout[];
  entries: number;
}

/**
 * Reads the layer file once and checks every entry (rules above) against `root` as it is now
 * (lower layers applied). Returns the whiteouts to apply; throws UNSAFE_LAYER naming the first violation.
 */
export async function planLayer(file: string, root: string, layerName: string): Promise<LayerPlan> {
  let violation: string | null = null;
  const refuse = (message: string) => (violation ??= message);
  const whiteouts: Whiteout[] = [];
  const layerSymlinks = new Set<string>();
  /** Paths that must not be symlinks: the parents of every write, and whiteout dirs. */
  const mustBeRealDirs = new Map<string, string>();
  let entries = 0;

  await listTar({
    file,
    strict: true,
    onReadEntry: (entry) => {
      entries++;
      try {
        const path = normalizeEntryPath(String(entry.path), "entry");
        const name = posix.basename(path);
        const dir = path.includes("/") ? posix.dirname(path) : "";
        if (name.startsWith(WHITEOUT_PREFIX)) {
          if (name === OPAQUE_WHITEOUT) whiteouts.push({ dir, name: null });
          else {
            const target = name.slice(WHITEOUT_PREFIX.length);
            if (target === "" || target === "." || target === ".." || target.startsWith(WHITEOUT_PREFIX)) throw new Error(`whiteout ${JSON.stringify(String(entry.path))} names no file`);
            whiteouts.push({ dir, name: target });
          }
          for (const p of prefixes(dir, true)) mustBeRealDirs.set(p, String(entry.path));
          return;
        }
        if (path === "") return; // the root dir itself ("./")
        for (const p of prefixes(path, false)) mustBeRealDirs.set(p, String(entry.path));
        if (entry.type === "SymbolicLink") {
          layerSymlinks.add(path);
          const target = String(entry.linkpath ?? "");
          if (!target.startsWith("/") && posix.normalize(posix.join(dir, target)).split("/")[0] === "..") {
            throw new Error(`symlink ${JSON.stringify(String(entry.path))} -> ${JSON.stringify(target)} points outside the image root`);
          }
        }
        if (entry.type === "Link") {
          const target = normalizeEntryPath(String(entry.linkpath ?? ""), `hardlink target of ${JSON.stringify(String(entry.path))}:`);
          if (target === "") throw new Error(`hardlink ${JSON.stringify(String(entry.path))} points at the root`);
          for (const p of prefixes(target, false)) mustBeRealDirs.set(p, `hardlink target ${target}`);
        }
        if (entry.type === "CharacterDevice" || entry.type === "BlockDevice") throw new Error(`device file ${JSON.stringify(String(entry.path))} is not allowed`);
      } catch (error) {
        refuse((error as Error).message);
      } finally {
        entry.resume();
      }
    },
  }).catch((error: Error) => refuse(`it is not a valid tar archive: ${error.message}`));
  if (violation) throw unsafeLayer(layerName, violation);

  for (const [dir, via] of mustBeRealDirs) {
    if (layerSymlinks.has(dir)) throw unsafeLayer(layerName, `${JSON.stringify(via)} would be written through the symlink ${dir} this layer creates`);
    const st = await lstat(join(root, dir)).catch(() => null);
    if (st?.isSymbolicLink()) throw unsafeLayer(layerName, `${JSON.stringify(via)} would be written through the symlink ${dir} of a lower layer`);
  }
  return { whiteouts, entries };
}

/** Applies checked whiteouts under `root`: nothing is followed (rm removes a symlink, not its target). */
export async function applyWhiteouts(root: string, whiteouts: Whiteout[]): Promise<void> {
  for (const w of whiteouts) {
    const dir = join(root, w.dir);
    if (w.name !== null) {
      await rm(join(dir, w.name), { recursive: true, force: true });
      continue;
    }
    const st = await lstat(dir).catch(() => null);
    if (!st?.isDirectory()) continue;
    for (const child of await readdir(dir)) await rm(join(dir, child), { recursive: true, force: true });
  }
}

/** Checks, applies whiteouts, then extracts the rest with node-tar (whose own checks stay on). */
export async function unpackLayerFile(file: string, root: string, layerName: string): Promise<void> {
  const plan = await planLayer(file, root, layerName);
  await applyWhiteouts(root, plan.whiteouts);
  const warnings: string[] = [];
  try {
    await extractTar({
      file,
      cwd: root,
      // Not strict: strict turns every warning into an error, INFO included; onwarn decides instead.
      strict: false,
      // Modes as the image says (a runner's umask would make /tmp 1755: runc keeps a tmpfs's mount point mode, and a task's user could not write there).
      chmod: true,
      filter: (path) => !posix.basename(path).startsWith(WHITEOUT_PREFIX),
      // INFO is node-tar rewriting an absolute symlink target as relative: not a refusal.
      onwarn: (code, message) => (code === "TAR_ENTRY_INFO" ? undefined : warnings.push(`${code}: ${String(message)}`)),
    });
  } catch (error) {
    throw unsafeLayer(layerName, (error as Error).message);
  }
  if (warnings.length > 0) throw unsafeLayer(layerName, warnings[0]!);
}
