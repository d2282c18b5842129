// Compiles what the package serves or imports at run time into dist/ (never committed):
// the SDK app code imports (`stasis/sdk`) as plain ESM, and the dashboard the server serves.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
await build({
  entryPoints: { "sdk/index": join(root, "sdk/index.ts") },
  outdir: join(root, "dist"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
  logLevel: "warning",
});

// The dashboard: Preact + TSX in one ES module and one stylesheet (server/dashboard/ui).
const ui = join(root, "server/dashboard/ui");
const out = join(root, "dist/dashboard");
await mkdir(join(out, "assets"), { recursive: true });
await build({
  entryPoints: { app: join(ui, "main.tsx") },
  outdir: join(out, "assets"),
  bundle: true,
  platform: "browser",
  format: "esm",
  target: "es2022",
  jsx: "automatic",
  jsxImportSource: "preact",
  minify: true,
  sourcemap: true,
  logLevel: "warning",
});
await copyFile(join(ui, "styles.css"), join(out, "assets/app.css"));
await copyFile(join(ui, "index.html"), join(out, "index.html"));
