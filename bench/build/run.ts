// Build benchmark: cold build, warm rebuild (one task file changed) and no-change rebuild of an
// example project, each pushed to a real local docker-registry. See README.md.
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildImage, createRegistryImageStore } from "../../builder/index.ts";
import { startRegistry } from "../../test/support/registry.ts";

const { values } = parseArgs({ options: { project: { type: "string" }, json: { type: "boolean", default: false } } });
const repoRoot = resolve(import.meta.dirname, "../..");
const source = resolve(values.project ?? join(repoRoot, "examples/movie-tickets"));

async function firstTaskFile(dir: string): Promise<string> {
  const names = (await readdir(join(dir, "trigger"))).filter((n) => /\.(m?[jt]s)$/.test(n)).sort();
  if (!names[0]) throw new Error(`no task file in ${dir}/trigger`);
  return join(dir, "trigger", names[0]);
}

const work = await mkdtemp(join(tmpdir(), "stasis-bench-build-"));
const projectDir = join(work, "project");
await cp(source, projectDir, { recursive: true, filter: (p) => !/\/(node_modules|\.stasis|dist)(\/|$)/.test(p.slice(source.length)) });
// A cold build assembles the runtime layer from scratch: give it an empty cache.
process.env.STASIS_CACHE_DIR = join(work, "cache");
const registry = await startRegistry();
const store = createRegistryImageStore({ url: registry.url, repository: "bench/app" });
const rows: Array<{ step: string; buildMs: number; pushMs: number; bytesUploaded: number; blobsSkipped: number; digest: string }> = [];

async function step(name: string, tag: string): Promise<void> {
  const t0 = performance.now();
  const image = await buildImage({ projectDir, sourceDateEpoch: 1_700_000_000 });
  const t1 = performance.now();
  const pushed = await store.push(image, tag);
  const t2 = performance.now();
  await image.dispose();
  rows.push({ step: name, buildMs: Math.round(t1 - t0), pushMs: Math.round(t2 - t1), bytesUploaded: pushed.bytesUploaded, blobsSkipped: pushed.blobsSkipped, digest: image.digest });
}

try {
  await step("cold build", "v1");
  const file = await firstTaskFile(projectDir);
  await writeFile(file, (await readFile(file, "utf8")) + `\nexport const __benchTouch = ${JSON.stringify(String(Date.now()))};\n`);
  await step("warm rebuild (1 file changed)", "v2");
  await step("no-change rebuild", "v3");
} finally {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}

if (values.json) {
  process.stdout.write(JSON.stringify({ project: source, node: process.version, steps: rows }) + "\n");
} else {
  console.log(`build bench: ${source} (node ${process.version})`);
  console.log("step                             build ms   push ms   bytes uploaded   blobs skipped");
  for (const r of rows) {
    console.log(`${r.step.padEnd(32)} ${String(r.buildMs).padStart(8)} ${String(r.pushMs).padStart(9)} ${String(r.bytesUploaded).padStart(16)} ${String(r.blobsSkipped).padStart(15)}`);
  }
}
