// Stands in for `esbuild` inside the bundled action (action/build.mjs maps the import here): esbuild
// ships a native binary, so it cannot be bundled; it is loaded from the toolchain root at first use.
import { createRequire } from "node:module";
import { join } from "node:path";
import { ACTION_ROOT } from "./toolchain.ts";

type Esbuild = typeof import("esbuild");
let loaded: Esbuild | undefined;

function esbuild(): Esbuild {
  loaded ??= createRequire(join(globalThis.__stasisPackageRoot ?? ACTION_ROOT, "package.json"))("esbuild") as Esbuild;
  return loaded;
}

export const build = ((options: Parameters<Esbuild["build"]>[0]) => esbuild().build(options)) as Esbuild["build"];
export const context = ((options: Parameters<Esbuild["context"]>[0]) => esbuild().context(options)) as Esbuild["context"];
export const transform = ((input: string, options?: Parameters<Esbuild["transform"]>[1]) => esbuild().transform(input, options)) as Esbuild["transform"];
