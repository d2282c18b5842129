import { describe, expect, it } from "vitest";
import { classifyCheckpoints, totalsPerProject } from "./plan-gc.ts";

const HOUR = 3_600_000;
const now = Date.parse("2026-11-30T12:00:00Z");
const stored = (key: string, ageMs: number, sizeBytes = 100) => ({ location: `registry:r/c@${key}`, key, sizeBytes, createdAt: now - ageMs });

describe("classifyCheckpoints", () => {
  it("keeps what a run resumes from and what may still be reported; orphans the rest", () => {
    const views = classifyCheckpoints(
      [stored("run_a/1-1", 5 * HOUR), stored("run_a/1-0", 5 * HOUR), stored("run_b/2-1", 60_000), stored("run_c/1-1", 60_000), stored("run_gone/1-1", 2 * HOUR), stored("run_new/1-1", 60_000)],
      [
        { runId: "run_a", project: "shop", environment: "production", status: "SUSPENDED", checkpointLocation: "registry:r/c@run_a/1-1" },
        { runId: "run_b", project: "shop", environment: "production", status: "WAITING", checkpointLocation: null },
        { runId: "run_c", project: "mail", environment: "staging", status: "CANCELED", checkpointLocation: null },
      ],
      now,
      HOUR,
    );
    const state = Object.fromEntries(views.map((v) => [v.key, v.state]));
    expect(state).toEqual({
      "run_a/1-1": "in-use", // the run resumes from it
      "run_a/1-0": "orphaned", // superseded, old
      "run_b/2-1": "recent", // the suspend may not be reported yet
      "run_c/1-1": "orphaned", // its run ended: never restored, whatever its age
      "run_gone/1-1": "orphaned", // no such run, older than the minimum age
      "run_new/1-1": "recent",
    });
    expect(totalsPerProject(views)).toEqual([
      { project: null, checkpoints: 2, bytes: 200, reclaimableBytes: 100 },
      { project: "mail", checkpoints: 1, bytes: 100, reclaimableBytes: 100 },
      { project: "shop", checkpoints: 3, bytes: 300, reclaimableBytes: 100 },
    ]);
  });
});
