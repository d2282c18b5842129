// Compiles what the package serves or imports at run time into dist/ (never committed):
// the SDK app code imports (`stasis/sdk`) as plain ESM, the dashboard the server serves, and the CLI.
import { build } from "esbuild";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/**
 * Every file goes in through a rename, and not at all when it holds these bytes already: what reads
 * dist/ meanwhile (a server, a running `stasis`, an image build archiving it — the suite builds both
 * side by side) never sees a file cut short.
 */
const replace = async (file, contents) => {
  const bytes = Buffer.from(contents);
  const now = await readFile(file).catch(() => null);
  if (now && now.equals(bytes)) return;
  await mkdir(dirname(file), { recursive: true });
  await writeFile(`${file}.${process.pid}.tmp`, bytes);
  await rename(`${file}.${process.pid}.tmp`, file);
};
const writeOutputs = async (result) => {
  for (const out of result.outputFiles) await replace(out.path, out.contents);
};

await build({
  entryPoints: { "sdk/index": join(root, "sdk/index.ts") },
  outdir: join(root, "dist"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
  write: false,
  logLevel: "warning",
}).then(writeOutputs);

// The dashboard: Preact + TSX in one ES module and one stylesheet (server/dashboard/ui).
const ui = join(root, "server/dashboard/ui");
const out = join(root, "dist/dashboard");
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
  write: false,
  logLevel: "warning",
}).then(writeOutputs);
await replace(join(out, "assets/app.css"), await readFile(join(ui, "styles.css")));
await replace(join(out, "index.html"), await readFile(join(ui, "index.html")));

// The `stasis` command as plain ESM (dist/cli/; cli/bin.mjs runs it while it matches the sources).
// Through tsx, every command started with ~1.3 s of CPU spent transpiling and resolving ~300 modules
// through the loader thread; bundled it is ~0.5 s. Each command module stays its own chunk (they are
// loaded lazily, cli/command-modules.ts). A file's `import.meta.url`/`dirname` is rewritten
// relative to the chunk, so what it reads beside itself (task-root.sh, package.json …) is read from
// the sources wherever the checkout lies. Files are replaced one by one through a rename, and a chunk of
// an earlier build stays a day (a running `stasis` may still load it), so a build never breaks one that runs.
const cliOut = join(root, "dist/cli");
const cli = await build({
  // The metafile's input paths are relative to this dir: inputs.json names them from the checkout's root.
  absWorkingDir: root,
  entryPoints: { main: join(root, "cli/main.ts") },
  outdir: cliOut,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
  metafile: true,
  write: false,
  logLevel: "warning",
  plugins: [
    {
      name: "stasis-source-location",
      setup(b) {
        b.onLoad({ filter: /\.ts$/ }, async (args) => {
          const source = await readFile(args.path, "utf8");
          if (!source.includes("import.meta.")) return { contents: source, loader: "ts" };
          const fromChunk = relative(cliOut, args.path).split(sep).join("/");
          const url = `new URL(${JSON.stringify(fromChunk)}, import.meta.url).href`;
          const dir = `(import.meta.dirname + ${JSON.stringify("/" + dirname(fromChunk))})`;
          const contents = source.replace(/\bimport\.meta\.(url|dirname)\b/g, (match, which, offset) => (inString(source, offset) ? match : which === "url" ? url : dir));
          return { contents, loader: "ts" };
        });
      },
    },
  ],
});
const inputs = [];
for (const file of Object.keys(cli.metafile.inputs).filter((f) => !f.startsWith("node_modules/"))) {
  const st = await stat(join(root, file));
  inputs.push([file, st.size, st.mtimeMs]);
}
await mkdir(cliOut, { recursive: true });
const written = new Set(["inputs.json"]);
// main.mjs last but one and the list of inputs last: until then a start runs the earlier build, or the sources.
for (const out of cli.outputFiles.sort((a, b) => Number(a.path.endsWith("main.mjs")) - Number(b.path.endsWith("main.mjs")))) {
  written.add(basename(out.path));
  await replace(out.path, out.contents);
}
await replace(join(cliOut, "inputs.json"), JSON.stringify(inputs));
for (const name of await readdir(cliOut)) {
  const file = join(cliOut, name);
  if (!written.has(name) && Date.now() - (await stat(file)).mtimeMs > 86_400_000) await rm(file, { force: true });
}

/** Whether `offset` lies inside a string literal of its line (`'…'`, `"…"` or a template): quotes before it on the line, counted. */
function inString(source, offset) {
  const line = source.slice(source.lastIndexOf("\n", offset) + 1, offset);
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "\\") i++;
    else if (quote === null && (c === "'" || c === '"' || c === "`")) quote = c;
    else if (c === quote) quote = null;
  }
  return quote !== null;
}
