import { stat, realpath } from "node:fs/promises";
import { dirname, sep } from "node:path";

/** `path` is `dir` or inside it. */
export const within = (path: string, dir: string): boolean => path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/** The topmost ancestor of `path` that others cannot enter (null when every one can be entered). */
export async function unreachableAncestor(path: string): Promise<{ ancestor: string; path: string } | null> {
  const real = await realpath(path);
  const ancestors: string[] = [];
  for (let d = dirname(real); dirname(d) !== d; d = dirname(d)) ancestors.unshift(d);
  for (const d of ancestors) if (((await stat(d)).mode & 0o001) === 0) return { ancestor: d, path: real };
  return null;
}

/** Every ancestor searchable and the dir itself readable by others: an unprivileged user can use it in place. */
export async function readableByOthers(dir: string): Promise<boolean> {
  const st = await stat(dir);
  if ((st.mode & 0o005) !== 0o005) return false;
  for (let d = dirname(dir); ; d = dirname(d)) {
    if (((await stat(d)).mode & 0o001) === 0) return false;
    if (dirname(d) === d) return true;
  }
}
