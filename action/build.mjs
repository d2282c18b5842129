// Bundles the action (action/src/index.ts) into action/dist/index.js, the file GitHub's runner executes.
// Deterministic: the same sources give the same bytes (test/action-dist.test.ts rebuilds and compares).
// Usage: node action/build.mjs [--outdir DIR]
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outFlag = process.argv.indexOf("--outdir");
const outDir = outFlag > 0 ? resolve(process.argv[outFlag + 1]) : join(repoRoot, "action", "dist");

/**
 * esbuild has a native binary and cannot be bundled: the builder's `esbuild` import goes to a shim
 * that loads it from the toolchain root at run time. builder/package-root.ts finds the SDK relative
 * to its own file; in the bundle that file is gone, so it asks the action where the toolchain is.
 */
const toolchainPlugin = {
  name: "stasis-action-toolchain",
  setup(b) {
    b.onResolve({ filter: /^esbuild$/ }, () => ({ path: join(repoRoot, "action", "src", "esbuild-runtime.ts") }));
    b.onLoad({ filter: /[\\/]builder[\\/]package-root\.ts$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const replaced = source.replaceAll("import.meta.url", '(globalThis.__stasisModuleUrl?.("builder/package-root.ts") ?? import.meta.url)');
      return { contents: replaced, loader: "ts" };
    });
  },
};

await mkdir(outDir, { recursive: true });
await build({
  entryPoints: [join(repoRoot, "action", "src", "index.ts")],
  outfile: join(outDir, "index.js"),
  absWorkingDir: repoRoot,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  legalComments: "none",
  // Bundled CommonJS dependencies call `require` for Node builtins; ESM has none, so give it one.
  banner: { js: 'import { createRequire as __actionCreateRequire } from "node:module";\nconst require = __actionCreateRequire(import.meta.url);' },
  plugins: [toolchainPlugin],
  logLevel: "warning",
});
await writeFile(join(outDir, "package.json"), JSON.stringify({ type: "module" }, null, 2) + "\n");
