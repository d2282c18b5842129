// The registry checkpoint store against Debian's docker-registry on this machine: upload and
// download time and bytes of a real CRIU checkpoint of ~20 MB and ~200 MB of task state, and the
// bytes a second checkpoint of the same run uploads. Usage:
//   npx tsx bench/suspend-resume/registry-store.ts [--runs 3] [--sizes 20,200] [--json]
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createDirCheckpointStore, createRegistryCheckpointStore } from "../../runner/checkpoint-store/index.ts";
import { createProcessRuntime } from "../../runner/workload/index.ts";
import { startRegistry } from "../../test/support/registry.ts";
import { writeBenchTask } from "./bench-task.ts";
import { nextMessage } from "./runtime-sample.ts";
import { medians } from "./medians.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, sizes: { type: "string", default: "20,200" }, json: { type: "boolean", default: false } } });
const runs = Number(values.runs);
const sizes = values.sizes.split(",").map(Number);
if (!Number.isInteger(runs) || runs < 1 || sizes.some((s) => !(s > 0))) {
  console.error("usage: registry-store.ts [--runs N>=1] [--sizes 20,200] [--json]");
  process.exit(2);
}
const runtime = await createProcessRuntime();
if (!runtime.checkpoints.available) {
  console.error(`cannot benchmark: checkpoints unavailable (${runtime.checkpoints.reason})`);
  process.exit(1);
}

interface Sample {
  imageBytes: number;
  dirPutMs: number;
  dirGetMs: number;
  uploadMs: number;
  uploadedBytes: number;
  blobs: number;
  downloadMs: number;
  downloadedBytes: number;
  secondUploadMs: number;
  secondUploadedBytes: number;
  secondSkippedBytes: number;
  secondStoredBytes: number;
}

const dir = await mkdtemp(path.join(tmpdir(), "stasis-bench-registry-"));
await chmod(dir, 0o755);
const script = await writeBenchTask(dir);
const registry = await startRegistry();
const registryStore = createRegistryCheckpointStore({ url: registry.url, repository: "bench/checkpoints" });
const dirStore = createDirCheckpointStore(path.join(dir, "dir-store"));
const results: Array<{ mb: number; median: Record<keyof Sample, number> }> = [];
try {
  for (const mb of sizes) {
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) {
      console.error(`bench: registry store, ${mb} MB, run ${i + 1}/${runs}`);
      samples.push(await sample(mb, i));
    }
    results.push({ mb, median: medians(samples) });
  }
} finally {
  await registry.stop();
  await rm(dir, { recursive: true, force: true });
}

/** start → dump → put (dir and registry) → get → restore → dump again → put again: one run checkpointed twice. */
async function sample(mb: number, i: number): Promise<Sample> {
  const images = path.join(dir, `images-${mb}-${i}`);
  const images2 = path.join(dir, `images2-${mb}-${i}`);
  const fetched = path.join(dir, `fetched-${mb}-${i}`);
  const proc = await runtime.start({ command: process.execPath, args: [script, String(mb)], cwd: dir, env: {} });
  await nextMessage(proc.ipc);
  const { sizeBytes: imageBytes } = await runtime.checkpoint(proc, images);
  const seal = { key: randomBytes(32) };

  let t = performance.now();
  const inDir = await dirStore.put(`bench/${mb}-${i}`, images, seal);
  const dirPutMs = performance.now() - t;
  t = performance.now();
  await dirStore.get(inDir.location, path.join(dir, `dir-fetched-${mb}-${i}`), { key: seal.key, sha256: inDir.sha256 });
  const dirGetMs = performance.now() - t;
  await dirStore.delete(inDir.location);
  await rm(path.join(dir, `dir-fetched-${mb}-${i}`), { recursive: true, force: true });

  t = performance.now();
  const first = await registryStore.put(`bench/${mb}-${i}-1`, images, seal);
  const uploadMs = performance.now() - t;
  const { uploadedBytes } = registryStore.lastTransfer;
  t = performance.now();
  await mkdir(fetched, { recursive: true });
  await registryStore.get(first.location, fetched, { key: seal.key, sha256: first.sha256 });
  const downloadMs = performance.now() - t;
  const { downloadedBytes } = registryStore.lastTransfer;

  // The same run, restored and checkpointed again (its next wait): a fresh key, as every suspend has.
  const restored = await runtime.restore(fetched, { cwd: dir });
  restored.ipc.write("ping\n");
  await nextMessage(restored.ipc);
  await runtime.checkpoint(restored, images2);
  t = performance.now();
  const second = await registryStore.put(`bench/${mb}-${i}-2`, images2, { key: randomBytes(32) });
  const secondUploadMs = performance.now() - t;
  const { uploadedBytes: secondUploadedBytes, skippedBytes: secondSkippedBytes } = registryStore.lastTransfer;

  await registryStore.delete(first.location);
  await registryStore.delete(second.location);
  for (const d of [images, images2, fetched]) await rm(d, { recursive: true, force: true });
  const blobs = Math.ceil(first.sizeBytes / (32 << 20));
  return { imageBytes, dirPutMs, dirGetMs, uploadMs, uploadedBytes, blobs, downloadMs, downloadedBytes, secondUploadMs, secondUploadedBytes, secondSkippedBytes, secondStoredBytes: second.sizeBytes };
}

if (values.json) {
  console.log(JSON.stringify({ runs, results }, null, 2));
} else {
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const mib = (v: number) => `${(v / 2 ** 20).toFixed(1)} MiB`;
  const rate = (bytes: number, millis: number) => `${(bytes / 2 ** 20 / (millis / 1000)).toFixed(0)} MiB/s`;
  for (const { mb, median: m } of results) {
    console.log(`\n~${mb} MB state (median of ${runs}), CRIU image ${mib(m.imageBytes)}`);
    console.table({
      "dir store put / get": { value: `${ms(m.dirPutMs)} / ${ms(m.dirGetMs)}` },
      "registry upload (pack, seal, HEAD, PATCH chunks, manifest)": { value: `${ms(m.uploadMs)}, ${mib(m.uploadedBytes)} in ${m.blobs} blob(s) (${rate(m.uploadedBytes, m.uploadMs)})` },
      "registry download (manifest, blobs verified, unpack)": { value: `${ms(m.downloadMs)}, ${mib(m.downloadedBytes)} (${rate(m.downloadedBytes, m.downloadMs)})` },
      "second checkpoint of the same run: upload": { value: `${ms(m.secondUploadMs)}, ${mib(m.secondUploadedBytes)} uploaded, ${mib(m.secondSkippedBytes)} already there (of ${mib(m.secondStoredBytes)})` },
    });
  }
}

