// Suspend/resume benchmark: raw CRIU vs the process runtime (+ dir checkpoint store) vs the whole
// platform (server + runner + task, a real run suspended on an event wait), for ~20 MB and ~200 MB
// of task state. Usage: npx tsx bench/suspend-resume/run.ts [--runs 3] [--sizes 20,200] [--json] [--runner-process]
// [--sandbox] (--runner-process: each platform's runner as its own `stasis runner` process, as deployed, instead of in
// this one; --sandbox: task processes in the runner's sandbox, their own user and root, as a root runner's are by default)
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createDirCheckpointStore } from "../../runner/checkpoint-store/index.ts";
import { createProcessRuntime } from "../../runner/workload/index.ts";
import { writeBenchTask } from "./bench-task.ts";
import { startPlatform, type PlatformSample } from "./platform-sample.ts";
import { rawCriuSample, type RawSample } from "./raw-criu.ts";
import { runtimeSample, type RuntimeSample } from "./runtime-sample.ts";
import { medians } from "./medians.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "3" }, sizes: { type: "string", default: "20,200" }, json: { type: "boolean", default: false }, "runner-process": { type: "boolean", default: false }, sandbox: { type: "boolean", default: false } } });
const runnerProcess = values["runner-process"];
const sandbox = values.sandbox;
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
await chmod(dir, 0o755); // the embedded PostgreSQL runs as its own user and must reach its data dir
const store = createDirCheckpointStore(path.join(dir, "store"));
const script = await writeBenchTask(dir);

const GOAL = 1.5;
/** Issue 14's goals: suspend ≤ 1.2× raw `criu dump`; resume ≤ raw `criu restore` + 30 ms. */
const SUSPEND_GOAL = 1.2;
const RESUME_SLACK_MS = 30;
/** Each run's figure against the raw CRIU of the same run: the medians hide how far apart runs are, and a goal met by the median may be met in one run of three. */
interface PerRun {
  suspendRatio: number[];
  resumeOver: number[];
  storedOver: number[];
  besideOver: number[];
}
const results: Array<{ mb: number; raw: Record<string, number>; runtime: Record<string, number>; platform: Record<string, number>; stored: Record<string, number>; stopped: Record<string, number>; beside: Record<string, number>; ratios: { suspend: number; resume: number }; perRun: PerRun }> = [];
console.error("bench: starting the platform (embedded PostgreSQL, server, runner) and deploying the task");
const platform = await startPlatform(dir, { localCheckpointBytes: 2 * 2 ** 30, runnerProcess, sandbox });
// A second platform whose runner keeps no dump of its own: each resume fetches and unpacks the stored copy from
// the dir store on this disk, as any other runner with the checkpoint on a local disk does.
const storedOnly = await startPlatform(dir, { localCheckpointBytes: 0, name: "platform-stored", runnerProcess, sandbox });
// A third whose runner keeps the dumped process stopped (`--keep-stopped`): a resume there continues it, no restore.
const keptStopped = await startPlatform(dir, { localCheckpointBytes: 2 * 2 ** 30, keepStoppedBytes: 2 * 2 ** 30, name: "platform-stopped", runnerProcess, sandbox });
// A fourth whose runner (its own process) is busy when the event comes: a second runner process on its work dir
// resumes the run from the dump the first one kept there (their checkpoint site), as another runner of one host does.
const besideHolder = await startPlatform(dir, { localCheckpointBytes: 2 * 2 ** 30, name: "platform-beside", runnerProcess: true, sandbox, resumeBeside: true });
try {
  await platform.sample(1); // warm-up: unpacks the image into the runner's cache
  await storedOnly.sample(1);
  await keptStopped.sample(1);
  await besideHolder.sample(1);
  for (const mb of sizes) {
    const raw: RawSample[] = [];
    const rt: RuntimeSample[] = [];
    const pf: PlatformSample[] = [];
    const st: PlatformSample[] = [];
    const sp: PlatformSample[] = [];
    const bs: PlatformSample[] = [];
    for (let i = 0; i < runs; i++) {
      console.error(`bench: ${mb} MB, run ${i + 1}/${runs}`);
      raw.push(await rawCriuSample(script, mb, dir));
      rt.push(await runtimeSample(runtime, store, script, mb, dir));
      pf.push(await platform.sample(mb));
      st.push(await storedOnly.sample(mb));
      sp.push(await keptStopped.sample(mb));
      bs.push(await besideHolder.sample(mb));
    }
    const [r, p] = [medians(raw), medians(pf)];
    const overRaw = (samples: PlatformSample[]) => samples.map((sample, i) => sample.resumeMs - raw[i]!.restoreMs);
    const perRun: PerRun = { suspendRatio: pf.map((sample, i) => sample.suspendMs / raw[i]!.dumpMs), resumeOver: overRaw(pf), storedOver: overRaw(st), besideOver: overRaw(bs) };
    results.push({ mb, raw: r, runtime: medians(rt), platform: p, stored: medians(st), stopped: medians(sp), beside: medians(bs), ratios: { suspend: p.suspendMs! / r.dumpMs!, resume: p.resumeMs! / r.restoreMs! }, perRun });
  }
} finally {
  await platform.stop().catch((error: Error) => console.error(`bench: stopping the platform failed: ${error.message}`));
  await storedOnly.stop().catch((error: Error) => console.error(`bench: stopping the second platform failed: ${error.message}`));
  await keptStopped.stop().catch((error: Error) => console.error(`bench: stopping the third platform failed: ${error.message}`));
  await besideHolder.stop().catch((error: Error) => console.error(`bench: stopping the fourth platform failed: ${error.message}`));
  await rm(dir, { recursive: true, force: true });
}

if (values.json) {
  console.log(JSON.stringify({ runs, goal: GOAL, results }, null, 2));
} else {
  const ms = (v: number) => `${v.toFixed(0)} ms`;
  const mib = (v: number) => `${(v / 2 ** 20).toFixed(1)} MiB`;
  const x = (v: number) => `${v.toFixed(2)}×${v <= GOAL ? "" : "  (over the goal)"}`;
  /** Milliseconds over (or under) a baseline, signed: "+ 18", "- 24". */
  const over = (v: number) => `${v < 0 ? "-" : "+"} ${Math.abs(v).toFixed(0)}`;
  for (const { mb, raw, runtime: r, platform: p, stored: s, stopped: k, beside: b, ratios, perRun } of results) {
    console.log(`\n~${mb} MB state (median of ${runs}), task RSS ${mib(r.rssBytes)} (platform task ${mib(p.rssBytes)}); the runner ${runnerProcess ? "in its own process, as deployed" : "in the bench's process, beside the server"}, tasks ${sandbox ? "sandboxed" : "unsandboxed"}`);
    console.table({
      "cold start → ready": { raw: ms(raw.readyMs), runtime: ms(r.coldStartMs), platform: `${ms(p.coldReadyMs)} (trigger → run() ${ms(p.coldStartMs)})` },
      "checkpoint (criu dump)": { raw: ms(raw.dumpMs), runtime: `${ms(r.checkpointMs)} (dump ${ms(r.dumpMs)})`, platform: `dump ${ms(p.dumpMs)}` },
      "suspend: wait called → slot free": { raw: "-", runtime: "-", platform: `${ms(p.suspendMs)} (prepare → stored ${ms(p.runnerSuspendMs)})` },
      "image size": { raw: mib(raw.imageBytes), runtime: mib(r.imageBytes), platform: mib(p.imageBytes) },
      "checkpoint on disk (zstd -1)": { raw: "-", runtime: mib(r.storedBytes), platform: mib(p.storedBytes) },
      "store put (tar | zstd -1)": { raw: "-", runtime: `${ms(r.storePutMs)} → ${mib(r.storedBytes)}`, platform: "-" },
      "store get (unpack)": { raw: "-", runtime: ms(r.storeGetMs), platform: "-" },
      "restore": { raw: ms(raw.restoreMs), runtime: ms(r.restoreMs), platform: "-" },
      "restore, images marked to populate (as a runner's are)": { raw: ms(raw.restorePopulatedMs), runtime: "-", platform: "-" },
      "restore → first ipc reply": { raw: "-", runtime: ms(r.firstReplyMs), platform: "-" },
      "resume: waitpoint completed → code after the wait": { raw: "-", runtime: "-", platform: `${ms(p.resumeMs)} (→ claimed ${ms(p.claimMs)})` },
      "resume, runner without the dump (stored copy on local disk)": { raw: "-", runtime: "-", platform: `${ms(s.resumeMs)} (→ claimed ${ms(s.claimMs)})` },
      "resume, process kept stopped on its runner (--keep-stopped)": { raw: "-", runtime: "-", platform: `${ms(k.resumeMs)} (→ claimed ${ms(k.claimMs)})` },
      "resume on another runner, the dump on its disk (same work dir)": { raw: "-", runtime: "-", platform: `${ms(b.resumeMs)} (→ claimed ${ms(b.claimMs)})` },
    });
    console.log(`platform vs raw CRIU (goal ≤ ${GOAL}×): suspend / raw dump ${x(ratios.suspend)}, resume / raw restore ${x(ratios.resume)}`);
    const resumeOver = p.resumeMs! - raw.restoreMs!;
    console.log(
      `issue 14 goals: suspend ${ms(p.suspendMs!)} = ${ratios.suspend.toFixed(2)}× raw dump (goal ≤ ${SUSPEND_GOAL}×${ratios.suspend <= SUSPEND_GOAL ? ", met" : ", not met"}); ` +
        `resume ${ms(p.resumeMs!)} = raw restore + ${ms(resumeOver)} (goal ≤ + ${RESUME_SLACK_MS} ms${resumeOver <= RESUME_SLACK_MS ? ", met" : ", not met"}; the runner that suspended it, from its own dump)`,
    );
    console.log(`the same resume against a raw restore of images marked as a runner marks them (${ms(raw.restorePopulatedMs!)}): + ${ms(p.resumeMs! - raw.restorePopulatedMs!)}`);
    const otherOver = s.resumeMs! - raw.restoreMs!;
    console.log(`issue 14 goals: resume on a runner without the dump (stored copy on local disk) ${ms(s.resumeMs!)} = raw restore + ${ms(otherOver)} (goal ≤ + ${RESUME_SLACK_MS} ms${otherOver <= RESUME_SLACK_MS ? ", met" : ", not met"}); its suspend ${ms(s.suspendMs!)} = ${(s.suspendMs! / raw.dumpMs!).toFixed(2)}× raw dump`);
    const besideOver = b.resumeMs! - raw.restoreMs!;
    console.log(`issue 14 goals: resume on another runner with the dump already on its disk (one work dir, its holder busy) ${ms(b.resumeMs!)} = raw restore + ${ms(besideOver)} (goal ≤ + ${RESUME_SLACK_MS} ms${besideOver <= RESUME_SLACK_MS ? ", met" : ", not met"}); its suspend ${ms(b.suspendMs!)} = ${(b.suspendMs! / raw.dumpMs!).toFixed(2)}× raw dump`);
    const stoppedOver = k.resumeMs! - raw.restoreMs!;
    console.log(`issue 14 goals: resume of a process kept stopped on its runner (--keep-stopped) ${ms(k.resumeMs!)} = raw restore ${over(stoppedOver)} ms (goal ≤ + ${RESUME_SLACK_MS} ms${stoppedOver <= RESUME_SLACK_MS ? ", met" : ", not met"}); its suspend ${ms(k.suspendMs!)} = ${(k.suspendMs! / raw.dumpMs!).toFixed(2)}× raw dump`);
    const each = (values: number[], show: (v: number) => string, met: (v: number) => boolean) => `${values.map(show).join(", ")} (met in ${values.filter(met).length} of ${values.length})`;
    console.log(
      `each run against the raw CRIU of the same run: suspend ${each(perRun.suspendRatio, (v) => `${v.toFixed(2)}×`, (v) => v <= SUSPEND_GOAL)}; ` +
        `resume ${each(perRun.resumeOver, over, (v) => v <= RESUME_SLACK_MS)}; stored copy ${each(perRun.storedOver, over, (v) => v <= RESUME_SLACK_MS)}; ` +
        `another runner ${each(perRun.besideOver, over, (v) => v <= RESUME_SLACK_MS)} ms`,
    );
  }
}

