// The short, seeded chaos run (bench/chaos, about two minutes): ~40 mixed runs on Debian's
// PostgreSQL, a `stasis server` process and three `stasis runner` processes with CRIU, while the
// injector kills a runner (also while criu runs under it), kills and restarts the server, and stops
// PostgreSQL (immediate) and starts it again. Every run must end, none may finish twice, and every
// event the server accepted for a waiting run must reach it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LONG_RUN_DEFAULTS, runChaos, type ChaosReport } from "../bench/chaos/chaos.ts";

let report: ChaosReport;

beforeAll(async () => {
  const lines: string[] = [];
  report = await runChaos({
    ...LONG_RUN_DEFAULTS,
    runs: 40,
    seed: 20261130,
    faultMs: 60_000,
    spreadShare: 0.6,
    maxWaitMs: 12_000,
    eventTimeoutSeconds: 60,
    maxEventDelayMs: 6_000,
    deadlineMs: 120_000,
    capacity: 5,
    firstFaults: ["runner-kill", "server-kill", "postgres-stop", "runner-kill-criu"],
    faultKinds: { "runner-kill": 1 },
    gapMs: [2_000, 4_000],
    downMs: [1_000, 2_000],
    checkpointTmpfsMb: 0,
    log: (line) => lines.push(line),
  });
  // The figures, for whoever reads a failure.
  console.log(lines.join("\n"));
  console.log(JSON.stringify({ faults: report.faults.counts, msFromRunnerKillToTreeGone: report.faults.msFromRunnerKillToTreeGone, figures: report.figures, harnessErrors: report.harnessErrors }, null, 2));
}, 420_000);

afterAll(() => {});

describe("a short chaos run (seeded)", () => {
  it("injected every kind of fault it plans and triggered every run", () => {
    expect(report.faults.counts["server-kill"]).toBeGreaterThanOrEqual(1);
    expect(report.faults.counts["postgres-stop"]).toBeGreaterThanOrEqual(1);
    expect((report.faults.counts["runner-kill"] ?? 0) + (report.faults.counts["runner-kill-mid-dump"] ?? 0) + (report.faults.counts["runner-kill-mid-restore"] ?? 0)).toBeGreaterThanOrEqual(2);
    expect(report.figures.runs.triggered).toBe(40);
  });

  // Before the fixes of issue 9 this fails in some runs (event waits left SUSPENDED past their
  // timeout after the PostgreSQL restart; likely traced item 5, the LISTEN reconnect); it passed
  // with the fix branches merged.
  it("loses no run: every run is final after the faults stop", () => {
    expect(report.figures.lost).toEqual({ count: 0, runs: [] });
  });

  it("finishes no run twice", () => {
    expect(report.figures.finishedTwice).toEqual({ count: 0, runs: [] });
  });

  // Issue 9, traced item 3: an event the server accepted must reach the run even when the runner
  // died before that wait's checkpoint was stored (waits are keyed by their place in the run).
  it("delivers every event the server accepted to the run it matched", () => {
    expect(report.figures.events.dropped, `dropped for runs ${report.figures.events.droppedRuns.join(", ")}`).toBe(0);
  });
});
