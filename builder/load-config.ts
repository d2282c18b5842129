import { readdir, readFile, mkdir, rm } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { build, type Plugin } from "esbuild";
import { StasisConfig } from "../schemas/index.ts";
import { BuilderError, toError } from "./errors.ts";
import { packageRoot, sdkIndexPath } from "./package-root.ts";

export const CONFIG_FILES = ["stasis.config.ts", "stasis.config.mts", "stasis.config.js", "stasis.config.mjs"];
const SKIP_DIRS = new Set(["node_modules", ".stasis", "dist", ".git"]);

export interface LoadedProjectConfig {
  /** Parsed config; `dirs` is always filled (relative to the project dir, posix separators). */
  config: StasisConfig & { dirs: string[] };
  configPath: string | null;
}

/** Makes `stasis/sdk` resolve to this package's SDK source, so task code and the worker share one registry. */
export function sdkAliasPlugin(): Plugin {
  return {
    name: "stasis-sdk",
    setup(b) {
      b.onResolve({ filter: /^stasis\/sdk$/ }, () => ({ path: sdkIndexPath() }));
    },
  };
}

/** The project's own package imports stay external (resolved from the project); the SDK's (zod) are bundled. */
function projectPackagesExternal(): Plugin {
  const sdkDirs = [join(packageRoot(), "sdk") + sep, join(packageRoot(), "schemas") + sep];
  return {
    name: "project-packages-external",
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => (sdkDirs.some((d) => args.importer.startsWith(d)) ? undefined : { path: args.path, external: true }));
    },
  };
}

function slugify(name: string): string {
  const slug = name.toLowerCase().replace(/^@/, "").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, "");
  return slug || "project";
}

/** Every `trigger/` directory under the project (not inside node_modules, .stasis, dist). */
export async function findTriggerDirs(projectDir: string): Promise<string[]> {
  const found: string[] = [];
  async function walk(dir: string): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (!entry.isDirectory() || SKIP_DIRS.has(entry.name)) continue;
      const full = join(dir, entry.name);
      if (entry.name === "trigger") found.push(relative(projectDir, full).split(sep).join("/"));
      else await walk(full);
    }
  }
  await walk(projectDir);
  return found;
}

async function importConfigFile(projectDir: string, configPath: string): Promise<unknown> {
  const tmpDir = join(projectDir, ".stasis");
  await mkdir(tmpDir, { recursive: true });
  const outfile = join(tmpDir, `config-${process.pid}-${Date.now()}.mjs`);
  try {
    await build({
      entryPoints: [configPath],
      outfile,
      bundle: true,
      format: "esm",
      platform: "node",
      target: "node20",
      plugins: [sdkAliasPlugin(), projectPackagesExternal()],
      logLevel: "silent",
    });
    const mod = (await import(pathToFileURL(outfile).href)) as { default?: unknown };
    if (mod.default === undefined) throw new Error("has no default export");
    return mod.default;
  } finally {
    await rm(outfile, { force: true });
  }
}

/** Loads `stasis.config.ts` (or .mts/.js/.mjs); without one, derives the config from package.json. */
export async function loadProjectConfig(projectDirInput: string): Promise<LoadedProjectConfig> {
  const projectDir = resolve(projectDirInput);
  const present = new Set(await readdir(projectDir).catch(() => [] as string[]));
  const file = CONFIG_FILES.find((name) => present.has(name));
  if (file) {
    const configPath = join(projectDir, file);
    let raw: unknown;
    try {
      raw = await importConfigFile(projectDir, configPath);
    } catch (err) {
      throw new BuilderError("CONFIG_LOAD_FAILED", `${file}: ${toError(err).message}`, { cause: err });
    }
    const parsed = StasisConfig.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new BuilderError("CONFIG_INVALID", `${file}: ${issue.path.join(".") || "(default export)"}: ${issue.message}`);
    }
    const dirs = parsed.data.dirs ?? (await findTriggerDirs(projectDir));
    return { config: { ...parsed.data, dirs }, configPath };
  }
  const pkg = await readFile(join(projectDir, "package.json"), "utf8").then((t) => JSON.parse(t) as { name?: string }, () => null);
  const project = slugify(pkg?.name ?? basename(projectDir));
  return { config: { project, dirs: await findTriggerDirs(projectDir) }, configPath: null };
}

/** Absolute task directories of a loaded config (what `stasis dev` watches). */
export async function findTaskDirs(projectDir: string, config?: { dirs?: string[] }): Promise<string[]> {
  const dirs = config?.dirs ?? (await findTriggerDirs(resolve(projectDir)));
  return dirs.map((d) => resolve(projectDir, d));
}
