import { existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { lstat, readdir, readlink, realpath } from "node:fs/promises";
import { builtinModules } from "node:module";
import { dirname, join, relative, sep } from "node:path";
import type { Plugin } from "esbuild";
import { BuilderError } from "./errors.ts";
import type { TarEntry } from "./tar-writer.ts";

export interface ExternalPackage {
  name: string;
  version: string;
  /** Real path of the installed package. */
  dir: string;
}

const BUILTINS = new Set(builtinModules);

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
export function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

/** The installed package dir, looking up `node_modules` from `fromDir` as Node does. */
export function findPackageDir(name: string, fromDir: string): string | null {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return realpathSync(candidate);
    if (dirname(dir) === dir) return null;
  }
}

function hasNativeCode(dir: string, depth = 0): boolean {
  if (depth === 0 && existsSync(join(dir, "binding.gyp"))) return true;
  if (depth > 4) return false;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith(".node")) return true;
    if (entry.isDirectory() && entry.name !== "node_modules" && hasNativeCode(join(dir, entry.name), depth + 1)) return true;
  }
  return false;
}

function readPackage(dir: string): { name: string; version: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> } {
  return JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
}

/**
 * Keeps native packages (a `.node` file or `binding.gyp`) and `build.external` ones out of the
 * bundle and records each, with its installed version, in `found`.
 */
export function externalsPlugin(explicit: string[], found: Map<string, ExternalPackage>): Plugin {
  const nativeCache = new Map<string, boolean>();
  return {
    name: "stasis-externals",
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith("node:") || BUILTINS.has(args.path) || args.path === "stasis/sdk") return undefined;
        const name = packageName(args.path);
        const dir = findPackageDir(name, args.resolveDir);
        const isExplicit = explicit.includes(name);
        if (!dir) {
          if (isExplicit) throw new BuilderError("EXTERNALS_FAILED", `build.external names ${name}, but it is not installed (run your package manager first)`);
          return undefined;
        }
        let native = nativeCache.get(dir);
        if (native === undefined) nativeCache.set(dir, (native = hasNativeCode(dir)));
        if (!isExplicit && !native) return undefined;
        found.set(name, { name, version: readPackage(dir).version, dir });
        return { path: args.path, external: true };
      });
    },
  };
}

async function entriesOf(srcDir: string, destPrefix: string, out: TarEntry[]): Promise<void> {
  for (const entry of await readdir(srcDir, { withFileTypes: true })) {
    const src = join(srcDir, entry.name);
    const dest = `${destPrefix}/${entry.name}`;
    if (entry.isSymbolicLink()) out.push({ type: "symlink", path: dest, target: await readlink(src) });
    else if (entry.isDirectory()) await entriesOf(src, dest, out);
    else if (entry.isFile()) {
      const st = await lstat(src);
      out.push({ type: "file", path: dest, source: src, size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644 });
    }
  }
}

/**
 * The externals layer: each external and its dependency closure, copied as the project's package
 * manager installed them from its lockfile (npm, pnpm and yarn alike: symlinks are followed to the
 * real package), flattened into `/app/node_modules`. The first version found of a name wins.
 */
export async function externalsLayerEntries(externals: ExternalPackage[]): Promise<TarEntry[]> {
  const placed = new Map<string, string>();
  const queue = [...externals].map((e) => ({ name: e.name, dir: e.dir }));
  while (queue.length > 0) {
    const { name, dir } = queue.shift()!;
    if (placed.has(name)) continue;
    placed.set(name, dir);
    const pkg = readPackage(dir);
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
      const depDir = findPackageDir(dep, dir);
      if (depDir) queue.push({ name: dep, dir: depDir });
      else if (!pkg.optionalDependencies?.[dep]) throw new BuilderError("EXTERNALS_FAILED", `${name} needs ${dep}, which is not installed`);
    }
  }
  const out: TarEntry[] = [];
  for (const [name, dir] of [...placed].sort(([a], [b]) => (a < b ? -1 : 1))) {
    await entriesOf(await realpath(dir), `app/node_modules/${name}`, out);
  }
  return out;
}

export function relativePosix(from: string, to: string): string {
  return relative(from, to).split(sep).join("/");
}
