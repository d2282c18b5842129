import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { BuildManifest, TaskManifestEntry } from "../schemas/index.ts";
import { BuilderError } from "./errors.ts";
import { externalsPlugin, relativePosix, type ExternalPackage } from "./externals.ts";
import { indexBundle } from "./index-bundle.ts";
import { checkWebhookEvents } from "./webhook-events/check-webhook-events.ts";
import { loadProjectConfig, sdkAliasPlugin, type LoadedProjectConfig } from "./load-config.ts";
import { sdkVersion, sdkWorkerPath } from "./package-root.ts";

export interface BundleProjectOptions {
  projectDir: string;
  /** Emptied and filled with the bundle. Keep it at a stable path: source maps point relative to it. */
  outDir: string;
  onProgress?: (message: string) => void;
  /** Already loaded config (saves loading it twice). */
  loaded?: LoadedProjectConfig;
}

export interface BundleResult {
  /** Absolute path of the bundle's entry module. */
  entry: string;
  manifest: BuildManifest;
  /** The directory holding the bundle (the image's /app). */
  appDir: string;
  externals: ExternalPackage[];
  config: LoadedProjectConfig["config"];
}

export const ENTRY_FILE = "index.mjs";
const TASK_FILE = /\.(m?[jt]sx?)$/;
const NOT_TASK_FILE = /(\.d\.ts|\.(test|spec)\.[mc]?[jt]sx?)$/;

async function listTaskFiles(projectDir: string, dirs: string[]): Promise<string[]> {
  const files: string[] = [];
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== "node_modules") await walk(full);
      else if (entry.isFile() && TASK_FILE.test(entry.name) && !NOT_TASK_FILE.test(entry.name)) files.push(relativePosix(projectDir, full));
    }
  }
  for (const dir of dirs) {
    const abs = resolve(projectDir, dir);
    if (!(await stat(abs).catch(() => null))?.isDirectory()) throw new BuilderError("NO_TASK_DIRS", `task directory ${dir} does not exist in ${projectDir}`);
    await walk(abs);
  }
  return [...new Set(files)].sort();
}


/** The Node the bundle is compiled for (esbuild target): the oldest Node Stasis supports. */
export const BUNDLE_TARGET = "node20";
/** The generated entry: every task file as a namespace, handed to the SDK's worker runtime. */
export function entrySource(files: string[]): string {
  const lines = [`import { startWorker } from ${JSON.stringify(sdkWorkerPath())};`];
  files.forEach((file, i) => lines.push(`import * as m${i} from ${JSON.stringify("./" + file)};`));
  lines.push(`await startWorker([${files.map((file, i) => `{ filePath: ${JSON.stringify(file)}, exports: m${i} }`).join(", ")}]);`);
  return lines.join("\n") + "\n";
}

async function hashDir(dir: string): Promise<string> {
  const hash = createHash("sha256");
  for (const name of (await readdir(dir)).sort()) {
    hash.update(name + "\0");
    hash.update(await readFile(join(dir, name)));
    hash.update("\0");
  }
  return "sha256:" + hash.digest("hex");
}

/** Bundles the project's task dirs with esbuild and indexes the tasks in a separate process. */
export async function bundleProject(o: BundleProjectOptions): Promise<BundleResult> {
  const projectDir = resolve(o.projectDir);
  const outDir = resolve(o.outDir);
  const loaded = o.loaded ?? (await loadProjectConfig(projectDir));
  const { config } = loaded;
  if (config.dirs.length === 0) throw new BuilderError("NO_TASK_DIRS", `no trigger/ directory in ${projectDir} (and no dirs in stasis.config.ts)`);
  if (!existsSync(sdkWorkerPath())) throw new BuilderError("BUNDLE_FAILED", `the SDK worker runtime is missing at ${sdkWorkerPath()}`);
  const files = await listTaskFiles(projectDir, config.dirs);
  if (files.length === 0) throw new BuilderError("NO_TASK_DIRS", `no task files in ${config.dirs.join(", ")}`);

  o.onProgress?.(`bundling ${files.length} task file(s) from ${config.dirs.join(", ")}`);
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const found = new Map<string, ExternalPackage>();
  try {
    await build({
      stdin: { contents: entrySource(files), resolveDir: projectDir, sourcefile: "stasis-entry.mjs", loader: "js" },
      outfile: join(outDir, ENTRY_FILE),
      absWorkingDir: projectDir,
      bundle: true,
      format: "esm",
      platform: "node",
      target: BUNDLE_TARGET,
      sourcemap: "linked",
      // Bundled CommonJS calls `require` for Node builtins; ESM has none, so give it one.
      banner: { js: 'import { createRequire as __stasisCreateRequire } from "node:module"; const require = __stasisCreateRequire(import.meta.url);' },
      plugins: [sdkAliasPlugin(), externalsPlugin(config.build?.external ?? [], found)],
      logLevel: "silent",
    });
  } catch (err) {
    const errors = (err as { errors?: Array<{ text: string; location?: { file: string; line: number } | null }> }).errors;
    const detail = errors?.length ? errors.map((e) => (e.location ? `${e.location.file}:${e.location.line}: ${e.text}` : e.text)).join("\n") : String(err);
    throw new BuilderError("BUNDLE_FAILED", `bundling failed:\n${detail}`, { cause: err });
  }
  const entry = join(outDir, ENTRY_FILE);
  const contentHash = await hashDir(outDir);

  o.onProgress?.("indexing tasks");
  const tasks = await indexBundle(entry, {
    retry: config.retries?.default,
    machine: config.machine,
    maxDuration: config.maxDuration,
    checkpoint: config.checkpoint,
    processKeepAlive: config.processKeepAlive,
  });
  checkWebhookEvents(tasks);
  const externals = [...found.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  const manifest = BuildManifest.parse({
    schemaVersion: 1,
    project: config.project,
    entry: ENTRY_FILE,
    tasks: tasks.map((t) => TaskManifestEntry.parse(t)),
    externals: externals.map(({ name, version }) => ({ name, version })),
    sdkVersion: sdkVersion(),
    // What the bundle is compiled for, not the builder's own Node: the same commit gives the same
    // manifest (hence image digest) whichever Node builds it. The image's Node is its config label
    // stasis.node-version.
    nodeVersion: BUNDLE_TARGET,
    contentHash,
  });
  return { entry, manifest, appDir: outDir, externals, config };
}
