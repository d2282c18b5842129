// Suspend/resume benchmark: raw CRIU vs the process runtime (+ dir checkpoint store), for ~20 MB
// and ~200 MB of task state. Usage: npx tsx bench/suspend-resume/run.ts [--runs 3] [--sizes 20,200] [--json]
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createDirCheckpointStore } from "../../runner/checkpoint-store/index.ts";
import { createProcessRuntime } from "../../runner/workload/index.ts";
import { writeBenchTask } from "./bench-task.ts";
import { rawCriuSample, type RawSample } from "./raw-criu.ts";
import { runtimeSample, type RuntimeSample } from "./runtime-sample.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, sizes: { type: "string", default: "20,200" }, json: { type: "boolean", default: false } } });
const runs = Number(values.runs);
const sizes = values.sizes.split(",").map(Number);
if (!Number.isInteger(runs) || runs < 1 || sizes.some((s) => !(s > 0))) {
  console.error("usage: run.ts [--runs N>=1] [--sizes 20,200] [--json]");
  process.exit(2);
}

const runtime = await createProcessRuntime();
if (!runtime.checkpoints.available) {
  console.error(`cannot benchmark: checkpoints unavailable (${runtime.checkpoints.reason})`);
  process.exit(1);
}
const dir = await mkdtemp(path.join(tmpdir(), "stasis-bench-"));
const store = createDirCheckpointStore(path.join(dir, "store"));
const script = await writeBenchTask(dir);

const results: Array<{ mb: number; raw: Record<string, number>; runtime: Record<string, number> }> = [];
try {
  for (const mb of sizes) {
    const raw: RawSample[] = [];
    const rt: RuntimeSample[] = [];
    for (let i = 0; i < runs; i++) {
      console.error(`bench: ${mb} MB, run ${i + 1}/${runs}`);
      raw.push(await rawCriuSample(script, mb, dir));
      rt.push(await runtimeSample(runtime, store, script, mb, dir));
    }
    results.push({ mb, raw: medians(raw), runtime: medians(rt) });
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

if (values.json) {
  console.log(JSON.stringify({ runs, results }, null, 2));
} else {
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const mib = (v: number) => `${(v / 2 ** 20).toFixed(1)} MiB`;
  for (const { mb, raw, runtime: r } of results) {
    console.log(`\n~${mb} MB state (median of ${runs}), task RSS ${mib(r.rssBytes)}`);
    console.table({
      "cold start → ready": { raw: ms(raw.readyMs), runtime: ms(r.coldStartMs) },
      "checkpoint (criu dump)": { raw: ms(raw.dumpMs), runtime: `${ms(r.checkpointMs)} (dump ${ms(r.dumpMs)})` },
      "image size": { raw: mib(raw.imageBytes), runtime: mib(r.imageBytes) },
      "store put (tar | zstd -1)": { raw: "-", runtime: `${ms(r.storePutMs)} → ${mib(r.storedBytes)}` },
      "store get (unpack)": { raw: "-", runtime: ms(r.storeGetMs) },
      "restore": { raw: ms(raw.restoreMs), runtime: ms(r.restoreMs) },
      "restore → first ipc reply": { raw: "-", runtime: ms(r.firstReplyMs) },
    });
  }
}

function medians<T extends object>(samples: T[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(samples[0]!)) {
    const sorted = samples.map((s) => (s as Record<string, number>)[key]!).sort((a, b) => a - b);
    out[key] = sorted[Math.floor(sorted.length / 2)]!;
  }
  return out;
}
