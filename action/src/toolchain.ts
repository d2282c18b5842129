import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The stasis checkout this action runs from (action.yml's folder). */
export const ACTION_ROOT = fileURLToPath(new URL("../..", import.meta.url));

declare global {
  var __stasisPackageRoot: string | undefined;
  /** Read by builder/package-root.ts in the bundled action (see action/build.mjs). */
  var __stasisModuleUrl: ((relativePath: string) => string) | undefined;
}

/**
 * The stasis package whose esbuild and SDK the build uses: STASIS_PACKAGE_ROOT, else the one the
 * project depends on (node_modules/stasis after `npm ci`), else this action's own checkout when
 * it has its dependencies installed. GitHub does not install an action's dependencies, so on a
 * hosted runner it is the project's.
 */
export function resolveToolchainRoot(projectDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const tried: string[] = [];
  const candidates: Array<() => string | null> = [
    () => env.STASIS_PACKAGE_ROOT ?? null,
    () => {
      try {
        return dirname(createRequire(join(projectDir, "package.json")).resolve("stasis/package.json"));
      } catch {
        return null;
      }
    },
    () => ACTION_ROOT,
  ];
  for (const candidate of candidates) {
    const root = candidate();
    if (!root) continue;
    tried.push(root);
    if (hasEsbuild(root)) return root;
  }
  throw new Error(
    `cannot find the stasis build toolchain (esbuild) for ${projectDir}: add "stasis" to the project's dependencies and run ` +
      `\`npm ci\` (or your package manager's install) in working-directory before this step. Looked in: ${tried.join(", ")}`,
  );
}

function hasEsbuild(root: string): boolean {
  try {
    createRequire(join(root, "package.json")).resolve("esbuild");
    return existsSync(join(root, "sdk"));
  } catch {
    return false;
  }
}

/** Points the bundled builder at `root` (its SDK files and esbuild). Call before loading the builder. */
export function useToolchain(root: string): void {
  globalThis.__stasisPackageRoot = root;
  globalThis.__stasisModuleUrl = (relativePath) => pathToFileURL(join(root, relativePath)).href;
}
