// npx tsx bench/chaos/run.ts [--runs N] [--minutes M] [--seed S] [--json] [--servers 2] [--runners 3] [--runc-runners 1] [--keep-stopped MiB]
// Exit 0: every guarantee held; 1: a guarantee broke (runs lost, finished twice, events dropped).
import { parseArgs } from "node:util";
import { LONG_RUN_DEFAULTS, runChaos, type ChaosReport } from "./chaos.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string" },
    minutes: { type: "string" },
    seed: { type: "string" },
    servers: { type: "string" },
    runners: { type: "string" },
    "runc-runners": { type: "string" },
    capacity: { type: "string" },
    "keep-stopped": { type: "string" },
    "deadline-minutes": { type: "string" },
    "event-timeout": { type: "string" },
    json: { type: "boolean", default: false },
  },
});
const num = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v));

const report = await runChaos({
  ...LONG_RUN_DEFAULTS,
  runs: num(values.runs, LONG_RUN_DEFAULTS.runs),
  faultMs: num(values.minutes, LONG_RUN_DEFAULTS.faultMs / 60_000) * 60_000,
  seed: num(values.seed, LONG_RUN_DEFAULTS.seed),
  servers: num(values.servers, LONG_RUN_DEFAULTS.servers),
  runners: num(values.runners, LONG_RUN_DEFAULTS.runners),
  runcRunners: num(values["runc-runners"], 0),
  capacity: num(values.capacity, LONG_RUN_DEFAULTS.capacity),
  keepStoppedMiB: num(values["keep-stopped"], 0),
  deadlineMs: num(values["deadline-minutes"], LONG_RUN_DEFAULTS.deadlineMs / 60_000) * 60_000,
  eventTimeoutSeconds: num(values["event-timeout"], LONG_RUN_DEFAULTS.eventTimeoutSeconds),
});

if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else process.stdout.write(formatReport(report));
process.exit(report.ok ? 0 : 1);

function formatReport(r: ChaosReport): string {
  const f = r.figures;
  const mark = (n: number) => (n === 0 ? "ok" : "BROKEN");
  const lines = [
    `chaos run, seed ${r.parameters.seed}: ${r.parameters.runs} runs, faults for ${r.parameters.faultMs / 60_000} min, ${r.parameters.servers} server(s), ${r.parameters.runners} runners × ${r.parameters.capacity}${r.parameters.runcRunners ? ` (${r.parameters.runcRunners} runc)` : ""}; wall clock ${Math.round(r.wallClockMs / 1000)} s`,
    `faults: ${Object.entries(r.faults.counts).map(([k, v]) => `${k} ${v}`).join(", ") || "none"}`,
    `  processes left alive under a killed runner: ${r.faults.orphansAfterRunnerKills.total} after ${r.faults.orphansAfterRunnerKills.kills} kills (${Object.entries(r.faults.orphansAfterRunnerKills.byComm).map(([k, v]) => `${k} ${v}`).join(", ")})`,
    `  ms from a runner kill until no process under it was left: ${r.faults.msFromRunnerKillToTreeGone.map((ms) => (ms < 0 ? "never" : String(ms))).join(", ") || "no kills"}`,
    `runs: ${f.runs.total} (${f.runs.triggered} triggered + ${f.runs.children} children); ${Object.entries(f.runs.byStatus).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `runs lost (not final by the deadline):        ${f.lost.count}  ${mark(f.lost.count)}`,
    ...f.lost.runs.slice(0, 10).map((x) => `    ${x.id} ${x.task} ${x.status} last step ${x.lastStep}`),
    `runs finished twice:                           ${f.finishedTwice.count}  ${mark(f.finishedTwice.count)}`,
    ...f.finishedTwice.runs.slice(0, 10).map((x) => `    ${x.id}: ${x.why}`),
    `accepted events never delivered:               ${f.events.dropped} of ${f.events.accepted}  ${mark(f.events.dropped)}${f.events.notFinalAtDeadline ? ` (${f.events.notFinalAtDeadline} more for runs not final)` : ""}`,
    ...f.events.droppedDetails.slice(0, 10).map((d) => `    ${d.runId} ${d.status}: saw ${JSON.stringify(d.received)}; attempts since: ${d.attemptsAfterAccept.join(", ")}`),
    `final step re-run after an injected crash:     ${f.finishRepeatedAfterCrash} (allowed: at-least-once since the last checkpoint)`,
    `code after a completed wait repeated:          ${f.afterWaitRepeated.total} (${f.afterWaitRepeated.afterCrash} after the attempt running it was killed, ${f.afterWaitRepeated.unexplained} not explained by a crash)`,
    ...f.afterWaitRepeated.traces.filter((t) => !t.explainedByKill).slice(0, 20).map((t) => `    ${t.runId} ${t.step} copy ${t.copy + 1}: ${t.cause}${t.earlier.error ? ` (${t.earlier.error.slice(0, 100)})` : ""}`),
    `code before the first checkpoint repeated:     ${f.beforeCheckpointRepeated.total} in ${f.beforeCheckpointRepeated.runs} runs (allowed: no checkpoint yet, so a new attempt starts over)`,
    `runs failed by the platform (not the task):    ${f.failedByPlatform.count}`,
    ...f.failedByPlatform.runs.slice(0, 10).map((x) => `    ${x.id} ${x.task} ${x.error}`),
    `event runs whose event never matched a wait:   ${f.events.neverMatched}`,
    `time from the last fault until all final:      ${f.msFromLastFaultToAllFinal === null ? "never (runs lost)" : `${(f.msFromLastFaultToAllFinal / 1000).toFixed(1)} s`}`,
    `attempts per run: ${Object.entries(f.attemptsHistogram).map(([k, v]) => `${k}: ${v}`).join(", ")}`,
    ...(r.harnessErrors.length ? ["harness errors:", ...r.harnessErrors.slice(0, 20).map((e) => `    ${e}`)] : []),
    r.ok ? "every guarantee held" : "A GUARANTEE BROKE",
    "",
  ];
  return lines.join("\n");
}
