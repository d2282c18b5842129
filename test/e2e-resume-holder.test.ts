// A resume goes first to the runner that took the checkpoint when it keeps its dumps (`--local-checkpoints`):
// it restores its own dump without fetching the sealed copy. When that runner is gone, another one takes
// the resume; a runner that keeps no dumps (the default) is not waited for at all.
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runnerPool, sendEvent, trigger, waitForFinal, waitForSuspended } from "./support/e2e-waits.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
const runners = runnerPool(() => stack);
const KEEPS_DUMPS = ["--local-checkpoints", "256"];

beforeAll(async () => {
  stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "waits", engine: { leaseMs: 3000, heartbeatIntervalMs: 500 } });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/waits"));
});
afterEach(() => runners.killAll());
afterAll(() => stack?.stop());

/** The runner's "run restored" log lines (JSON), by run. */
function restoredLines(log: string): Map<string, { fromLocalDump?: boolean }> {
  const lines = log.split("\n").filter((l) => l.includes('"run restored"')).map((l) => JSON.parse(l) as { runId: string; fromLocalDump?: boolean });
  return new Map(lines.map((l) => [l.runId, l]));
}

describe("resumes and the runner holding the dump", () => {
  it("a resume goes to the runner that took the checkpoint, which restores its own dump, while another runner polls too", async () => {
    const holder = await runners.start({ name: "holder-a", args: KEEPS_DUMPS });
    const runs = await Promise.all([1, 2].map((n) => trigger(stack, "await-event", { event: "holder-go", filter: { n: [n] } })));
    await Promise.all(runs.map(({ id }) => waitForSuspended(stack, id)));
    // Idle and polling: without the hold it would claim about half of the resumes.
    const other = await runners.start({ name: "other-b" });

    for (const n of [1, 2]) expect((await sendEvent(stack, "holder-go", { n })).matchedWaitpoints).toBe(1);
    for (const [i, { id }] of runs.entries()) {
      const run = await waitForFinal(stack, id);
      expect(run.output).toMatchObject({ received: { payload: { n: i + 1 } } });
      expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([["COMPLETED", holder.runnerId]]);
      expect(restoredLines(holder.log()).get(id)).toMatchObject({ fromLocalDump: true });
    }
    expect(restoredLines(other.log()).size).toBe(0);
  });

  it("when the runner that took the checkpoint is gone, another runner resumes the run from the stored copy", async () => {
    const holder = await runners.start({ name: "doomed-a", args: KEEPS_DUMPS });
    const { id } = await trigger(stack, "await-event", { event: "holder-gone", filter: { n: [1] } });
    await waitForSuspended(stack, id);
    // Killed at once: the server still counts it as seen recently, so the resume is held for it first.
    await holder.kill9();
    const taker = await runners.start({ name: "taker-b" });

    expect((await sendEvent(stack, "holder-gone", { n: 1 })).matchedWaitpoints).toBe(1);
    const run = await waitForFinal(stack, id);
    expect(run.output).toMatchObject({ received: { payload: { n: 1 } } });
    expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([["COMPLETED", taker.runnerId]]);
    expect(restoredLines(taker.log()).get(id)).toMatchObject({ fromLocalDump: false });
  });

  it("a runner that keeps no dumps is not held for: its resume is queued for any runner, and restores the sealed copy", async () => {
    const plain = await runners.start({ name: "plain-a" });
    const { id } = await trigger(stack, "await-event", { event: "no-holder", filter: { n: [1] } });
    await waitForSuspended(stack, id);
    await plain.kill9();
    expect((await sendEvent(stack, "no-holder", { n: 1 })).matchedWaitpoints).toBe(1);
    // Queued with no hold: a runner that starts now may take it at once.
    expect(await stack.database.db("runs").where({ id }).first("status", "resume_runner_id", "resume_held_until")).toEqual({ status: "QUEUED", resume_runner_id: null, resume_held_until: null });
    const taker = await runners.start({ name: "taker-c" });
    const run = await waitForFinal(stack, id);
    expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([["COMPLETED", taker.runnerId]]);
    expect(restoredLines(taker.log()).get(id)).toMatchObject({ fromLocalDump: false });
  });
});
