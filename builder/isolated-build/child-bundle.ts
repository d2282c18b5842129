import { rmSync } from "node:fs";
import { chmod, mkdtemp, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { BuilderError, toError } from "../errors.ts";
import { packageRoot } from "../package-root.ts";

let bundled: Promise<string> | null = null;

/**
 * The build child as one ES module (child.ts with the builder and zod inlined; esbuild stays
 * external, by absolute path), bundled once per process into a fresh root-owned dir the build user
 * can read but not write. Starting it costs ~0.9 s here against ~1.5–2.3 s through tsx, which
 * would also have no transpile cache as the build user.
 */
export function childBundle(): Promise<string> {
  bundled ??= bundleChild().catch((error: unknown) => {
    bundled = null;
    throw new BuilderError("BUILD_SANDBOX_FAILED", `could not prepare the build sandbox's child: ${toError(error).message}`, { cause: error });
  });
  return bundled;
}

async function bundleChild(): Promise<string> {
  const root = packageRoot();
  const esbuildMain = createRequire(join(root, "package.json")).resolve("esbuild");
  const dir = await mkdtemp(join(tmpdir(), "stasis-build-child-"));
  await chmod(dir, 0o755);
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const outfile = join(dir, "child.mjs");
  await build({
    entryPoints: [join(root, "builder", "isolated-build", "child.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    banner: { js: 'import { createRequire as __stasisCreateRequire } from "node:module"; const require = __stasisCreateRequire(import.meta.url);' },
    plugins: [
      {
        name: "stasis-build-child",
        setup(b) {
          b.onResolve({ filter: /^esbuild$/ }, () => ({ path: esbuildMain, external: true }));
          // The SDK and the worker are found relative to package-root.ts: keep its real location.
          b.onLoad({ filter: /[\\/]builder[\\/]package-root\.ts$/ }, async (args) => ({
            contents: (await readFile(args.path, "utf8")).replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href)),
            loader: "ts",
          }));
        },
      },
    ],
    logLevel: "silent",
  });
  await chmod(outfile, 0o644);
  return outfile;
}
