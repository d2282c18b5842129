// One chaos run: the stack, the ledger, the planned mix of runs, the event sender and the fault
// injector, then the wait for every run to be final, then the figures.
import { join } from "node:path";
import { analyze, FINAL, type AttemptRow, type ChaosFigures, type RunRow } from "./analyze.ts";
import { createFaultInjector, type FaultEvent, type FaultKind, type OrphanCheck } from "./faults.ts";
import { startLedger } from "./ledger-service.ts";
import { createRng } from "./prng.ts";
import { startStack } from "./stack.ts";
import { createWorkload, planRuns } from "./workload.ts";

export interface ChaosOptions {
  runs: number;
  /** How long faults are injected. */
  faultMs: number;
  seed: number;
  servers: number;
  runners: number;
  /** How many of `runners` use the runc workload (tasks in the image's own root). */
  runcRunners?: number;
  capacity: number;
  /** `--keep-stopped` of the process runners (MiB; 0: off, the default). */
  keepStoppedMiB?: number;
  /** Runs are triggered over this share of the fault window. */
  spreadShare: number;
  maxWaitMs: number;
  eventTimeoutSeconds: number;
  maxEventDelayMs: number;
  /** After the faults stop, how long runs may take to all be final. */
  deadlineMs: number;
  faultKinds: Partial<Record<FaultKind, number>>;
  /** Faults injected first, in this order, before the seeded draw takes over. */
  firstFaults?: FaultKind[];
  gapMs: [number, number];
  downMs: [number, number];
  diskFullMs: [number, number];
  checkpointTmpfsMb: number;
  log?: (line: string) => void;
}

export const LONG_RUN_DEFAULTS: ChaosOptions = {
  runs: 1000,
  faultMs: 10 * 60_000,
  seed: 1,
  servers: 1,
  runners: 3,
  capacity: 6,
  spreadShare: 0.8,
  maxWaitMs: 30_000,
  eventTimeoutSeconds: 240,
  maxEventDelayMs: 20_000,
  deadlineMs: 10 * 60_000,
  faultKinds: { "runner-kill": 3, "runner-kill-criu": 3, "server-kill": 1.5, "postgres-stop": 1, "disk-fill": 1 },
  // Every kind once first, so even a short run sees each; then the seeded draw.
  firstFaults: ["runner-kill-criu", "server-kill", "postgres-stop", "disk-fill", "runner-kill"],
  gapMs: [5_000, 20_000],
  downMs: [1_000, 5_000],
  diskFullMs: [10_000, 20_000],
  checkpointTmpfsMb: 4096,
};

export interface ChaosReport {
  parameters: Omit<ChaosOptions, "log">;
  startedAt: string;
  wallClockMs: number;
  faults: { counts: Record<string, number>; events: FaultEvent[]; orphansAfterRunnerKills: { total: number; kills: number; byComm: Record<string, number> }; msFromRunnerKillToTreeGone: number[] };
  figures: ChaosFigures;
  /** Broken guarantees (exit non-zero when any is above 0). */
  violations: { lost: number; finishedTwice: number; eventsDropped: number };
  ok: boolean;
  harnessErrors: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  process.env.STASIS_API_TIMEOUT_MS ??= "10000";
  const started = Date.now();
  const ledger = await startLedger();
  const stack = await startStack({ servers: options.servers, runners: options.runners, runcRunners: options.runcRunners, capacity: options.capacity, keepStoppedMiB: options.keepStoppedMiB, checkpointTmpfsMb: options.checkpointTmpfsMb, projectDir: join(import.meta.dirname, "project"), log });
  try {
    const plan = planRuns(createRng(options.seed), ledger.url, { runs: options.runs, spreadMs: Math.round(options.faultMs * options.spreadShare), maxWaitMs: options.maxWaitMs, eventTimeoutSeconds: options.eventTimeoutSeconds, maxEventDelayMs: options.maxEventDelayMs });
    let stopped = false;
    const workload = createWorkload({ apiUrls: stack.apiUrls, apiKey: stack.apiKey, ledger, rng: createRng(options.seed + 1), seed: options.seed, maxEventDelayMs: options.maxEventDelayMs, stopped: () => stopped });
    const faults = createFaultInjector(stack, createRng(options.seed + 2), { kinds: options.faultKinds, gapMs: options.gapMs, downMs: options.downMs, diskFullMs: options.diskFullMs, criuWatchMs: 15_000 }, log);
    const sender = workload.sendEvents();
    const loadStart = Date.now();
    log(`chaos: ${plan.length} runs over ${Math.round((options.faultMs * options.spreadShare) / 1000)} s, faults for ${Math.round(options.faultMs / 1000)} s (seed ${options.seed})`);
    await Promise.all([faults.run(loadStart + options.faultMs, options.firstFaults), workload.trigger(plan)]);
    const faultsStoppedAt = Date.now();
    log(`chaos: faults stopped (${JSON.stringify(faults.counts())}); ${workload.triggered.length} runs triggered; waiting up to ${Math.round(options.deadlineMs / 1000)} s for every run to be final`);

    const deadline = faultsStoppedAt + options.deadlineMs;
    let lastProgress = 0;
    for (;;) {
      const open = await stack.db.query<{ n: string }>("SELECT count(*) AS n FROM runs WHERE status <> ALL($1)", [FINAL]).then((r) => Number(r.rows[0].n), () => -1);
      if (open === 0) break;
      if (Date.now() > deadline) {
        log(`chaos: deadline passed with ${open} runs not final`);
        break;
      }
      if (Date.now() - lastProgress > 30_000) {
        log(`chaos: ${open} runs not final yet`);
        lastProgress = Date.now();
      }
      await sleep(1000);
    }
    stopped = true;
    await sender;

    const runs = (await stack.db.query<RunRow>("SELECT id, task_id, status, output, error, attempt_count, parent_run_id, completed_at FROM runs")).rows;
    const attempts = (await stack.db.query<AttemptRow>("SELECT run_id, number, status, runner_id, started_at, ended_at, error FROM run_attempts")).rows;
    const figures = analyze({ triggered: workload.triggered, runs, attempts, records: ledger.records, accepted: workload.accepted, killedRunners: stack.killedRunners, lastFaultHealedAt: faults.lastHealedAt(), faultEvents: faults.events });
    const byComm: Record<string, number> = {};
    for (const check of faults.orphanChecks as OrphanCheck[]) for (const comm of check.comms) byComm[comm] = (byComm[comm] ?? 0) + 1;
    const violations = { lost: figures.lost.count, finishedTwice: figures.finishedTwice.count, eventsDropped: figures.events.dropped };
    const { log: _log, ...parameters } = options;
    return {
      parameters,
      startedAt: new Date(started).toISOString(),
      wallClockMs: Date.now() - started,
      faults: { counts: faults.counts(), events: faults.events, orphansAfterRunnerKills: { total: faults.orphanChecks.reduce((s, c) => s + c.orphans, 0), kills: faults.orphanChecks.length, byComm }, msFromRunnerKillToTreeGone: [...stack.killedRunners.values()].map((k) => (k.goneAt === undefined ? -1 : k.goneAt - k.killedAt)) },
      figures,
      violations,
      ok: Object.values(violations).every((v) => v === 0),
      harnessErrors: [...faults.harnessErrors, ...workload.triggerErrors, ...(workload.triggered.length < plan.length ? [`only ${workload.triggered.length} of ${plan.length} runs were triggered`] : [])],
    };
  } finally {
    await stack.cleanup();
    await ledger.close();
  }
}
