import { lstat, readFile, realpath, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { parse } from "yaml";
import { ProjectPath, RepoSettings } from "../schemas/index.ts";

export const REPO_SETTINGS_FILE = ".stasis.yml";
const MAX_SETTINGS_BYTES = 16 * 1024;

/**
 * Where the project sits in a clone: `path` from `.stasis.yml` at the repository root when it has
 * one, else the App's `STASIS_PROJECT_PATH` (default `.`). The file is parsed as plain YAML data,
 * never run; it must be a small regular file (not a symlink), and the path must resolve to a
 * directory inside the clone.
 */
export async function resolveProjectDir(cloneDir: string, defaultPath: string): Promise<{ dir: string; path: string }> {
  const path = (await readSettings(cloneDir)).path ?? ProjectPath.parse(defaultPath);
  const root = await realpath(cloneDir);
  const dir = await realpath(join(root, path)).catch(() => {
    throw new Error(`the project path ${path} does not exist in the repository (set by ${REPO_SETTINGS_FILE} or STASIS_PROJECT_PATH)`);
  });
  const inside = relative(root, dir);
  if (inside.startsWith(`..${sep}`) || inside === "..") throw new Error(`the project path ${path} leads outside the repository`);
  if (!(await stat(dir)).isDirectory()) throw new Error(`the project path ${path} is not a directory`);
  return { dir, path };
}

async function readSettings(cloneDir: string): Promise<RepoSettings> {
  const file = join(cloneDir, REPO_SETTINGS_FILE);
  const info = await lstat(file).catch((error: NodeJS.ErrnoException) => (error.code === "ENOENT" ? null : Promise.reject(error)));
  if (!info) return {};
  if (!info.isFile()) throw new Error(`${REPO_SETTINGS_FILE} must be a regular file`);
  if (info.size > MAX_SETTINGS_BYTES) throw new Error(`${REPO_SETTINGS_FILE} is larger than ${MAX_SETTINGS_BYTES} bytes`);
  let data: unknown;
  try {
    data = parse(await readFile(file, "utf8")) ?? {};
  } catch (thrown) {
    throw new Error(`${REPO_SETTINGS_FILE} is not valid YAML: ${thrown instanceof Error ? thrown.message : String(thrown)}`);
  }
  const parsed = RepoSettings.safeParse(data);
  if (!parsed.success) throw new Error(`${REPO_SETTINGS_FILE}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  return parsed.data;
}
