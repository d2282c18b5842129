// A resume goes first to the runner that took the checkpoint when it keeps its dumps (`--local-checkpoints`):
// it restores its own dump without fetching the sealed copy; when it has no free slot, a runner keeping its
// dumps on the same work dir restores that dump just as well. When that runner is gone, another one takes
// the resume; a runner that keeps no dumps (the default) is not waited for at all.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunTimeline } from "../schemas/index.ts";
import { runnerPool, sendEvent, taskProcesses, trigger, waitForFinal, waitForSuspended } from "./support/e2e-waits.ts";
import { startTime } from "../runner/workload/leftovers.ts";
import { RESUME_HOLD_MS } from "../server/engine/resume-hold.ts";
import { pidAlive } from "../runner/workload/pid-alive.ts";
import { namespaceStates } from "./support/processes.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let stack: TestStack;
const runners = runnerPool(() => stack);
const KEEPS_DUMPS = ["--local-checkpoints", "256"];

beforeAll(async () => {
  stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "waits", engine: { leaseMs: 3000, heartbeatIntervalMs: 500 } });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/waits"));
});
afterEach(() => runners.killAll());
afterAll(() => stack?.stop());

/** The dumps kept under a runner's work dir (runner/local-checkpoints.ts). */
async function keptDumps(workDir: string): Promise<string[]> {
  return (await readdir(join(workDir, "local-checkpoints")).catch(() => [] as string[])).filter((name) => /^[0-9a-f]{64}$/.test(name));
}

/** The runner's "run restored" log lines (JSON), by run. */
function restoredLines(log: string): Map<string, { fromLocalDump?: boolean; thawed?: boolean }> {
  const lines = log.split("\n").filter((l) => l.includes('"run restored"')).map((l) => JSON.parse(l) as { runId: string; fromLocalDump?: boolean; thawed?: boolean });
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
      // The run's timeline says where and when its frozen wait resumed (written by the claim that restored it).
      const timeline = await stack.api<RunTimeline>("GET", `/api/v1/runs/${id}/timeline`);
      expect(timeline.waits.map((w) => [w.frozen, w.resumedRunnerId, w.resumedAt !== null && Date.parse(w.resumedAt) >= Date.parse(w.completedAt!)])).toEqual([[true, holder.runnerId, true]]);
    }
    expect(restoredLines(other.log()).size).toBe(0);
  });

  it("a resume whose holder has no free slot goes at once to a runner keeping its dumps on the same work dir, which restores the holder's dump; a runner elsewhere gets none", async () => {
    const workDir = join(stack.stateDir, "site-host");
    const holder = await runners.start({ name: "site-holder", capacity: 1, args: [...KEEPS_DUMPS, "--work-dir", workDir] });
    const { id } = await trigger(stack, "await-event", { event: "site-busy", filter: { n: [1] } });
    await waitForSuspended(stack, id);
    // Its one slot taken by a run that waits in-process (each wait below the suspend threshold), for as long as the test needs.
    const blocker = await trigger(stack, "sleep-for", { ms: 500, times: 120 });
    await stack.waitForRun(blocker.id, (r) => r.status === "WAITING", `run ${blocker.id} to wait on the holder`);
    const beside = await runners.start({ name: "site-beside", args: [...KEEPS_DUMPS, "--work-dir", workDir] });
    const elsewhere = await runners.start({ name: "site-elsewhere", capacity: 10 });

    expect((await sendEvent(stack, "site-busy", { n: 1 })).matchedWaitpoints).toBe(1);
    const run = await waitForFinal(stack, id);
    expect(run.output).toMatchObject({ received: { payload: { n: 1 } } });
    expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([["COMPLETED", beside.runnerId]]);
    // The dump the holder kept, taken by a rename: no fetch of the sealed copy.
    expect(restoredLines(beside.log()).get(id)).toMatchObject({ fromLocalDump: true });
    expect(await keptDumps(workDir)).toEqual([]);
    expect(restoredLines(elsewhere.log()).size).toBe(0);
    expect(restoredLines(holder.log()).size).toBe(0);
    // Not after the second it would have been held for the busy holder: resumed (by the database's clock) before that ended.
    const timeline = await stack.api<RunTimeline>("GET", `/api/v1/runs/${id}/timeline`);
    const [wait] = timeline.waits;
    expect(wait).toMatchObject({ frozen: true, resumedRunnerId: beside.runnerId });
    expect(Date.parse(wait.resumedAt!) - Date.parse(wait.completedAt!)).toBeLessThan(RESUME_HOLD_MS);
    expect((await stack.api<{ status: string }>("POST", `/api/v1/runs/${blocker.id}/cancel`)).status).toBe("CANCELED");
  });

  it("when the runner that took the checkpoint is killed, the runner restarted on its work dir removes the dump it left and resumes the run from the stored copy", async () => {
    const workDir = join(stack.stateDir, "host-runner");
    const holder = await runners.start({ name: "doomed-a", args: [...KEEPS_DUMPS, "--work-dir", workDir] });
    const { id } = await trigger(stack, "await-event", { event: "holder-gone", filter: { n: [1] } });
    await waitForSuspended(stack, id);
    // Killed at once: the server still counts it as seen recently, so the resume is held for it first.
    await holder.kill9();
    // SIGKILL left its dump (the task's memory, in clear) where it kept it.
    expect(await keptDumps(workDir)).toHaveLength(1);
    const taker = await runners.start({ name: "taker-b", args: ["--work-dir", workDir] });
    // Gone before the restarted runner registered, with the killed one's scratch (dumps and restores under way).
    expect(await keptDumps(workDir)).toEqual([]);
    expect(await readdir(join(workDir, "scratch"))).toEqual([`${taker.child.pid}-${await startTime(taker.child.pid!)}`]);
    expect(taker.log()).toMatch(/"dumps":1,"scratch":1,.*"msg":"removed dumps left by a runner that is gone"/);

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
    const timeline = await stack.api<RunTimeline>("GET", `/api/v1/runs/${id}/timeline`);
    expect(timeline.waits.map((w) => [w.frozen, w.resumedRunnerId])).toEqual([[true, taker.runnerId]]);
  });
});

const KEEPS_STOPPED = ["--keep-stopped", "256"];

/** The state letter of each of the stack's task processes inside their namespaces. */
const taskStates = async () => namespaceStates(await taskProcesses(stack));

describe("a runner that keeps suspended runs' processes stopped (--keep-stopped)", () => {
  it("a resume on it continues the very process it stopped, with its state; nothing of it runs while the run waits", async () => {
    const keeper = await runners.start({ name: "keeper-a", args: KEEPS_STOPPED });
    const { id } = await trigger(stack, "await-event", { event: "stopped-go", filter: { n: [1] } });
    await stack.waitForRun(id, (r) => r.status === "SUSPENDED", `run ${id} to suspend`);
    // Its supervisor and its task: alive, every one of them stopped.
    const stopped = await waitFor("the suspended run's processes to be stopped", async () => {
      const states = await taskStates();
      return states.size >= 2 && [...states.values()].every((state) => state === "T") ? states : undefined;
    });
    const other = await runners.start({ name: "other-b" });

    expect((await sendEvent(stack, "stopped-go", { n: 1 })).matchedWaitpoints).toBe(1);
    const run = await waitForFinal(stack, id);
    expect(run.output).toMatchObject({ received: { payload: { n: 1 } } });
    expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([["COMPLETED", keeper.runnerId]]);
    expect(restoredLines(keeper.log()).get(id)).toMatchObject({ thawed: true });
    expect(restoredLines(other.log()).size).toBe(0);
    // The same OS processes went on (a restore makes new ones) and ended with the run.
    expect(keeper.log()).not.toContain('"fromLocalDump"');
    await waitFor("the run's processes to be gone", async () => ([...stopped.keys()].every((pid) => !pidAlive(pid)) ? true : undefined));
  });

  it("a stopped process goes with its run: canceled, or its runner killed (another runner then restores the stored copy)", async () => {
    const keeper = await runners.start({ name: "keeper-c", args: KEEPS_STOPPED });
    const [canceled, moved] = await Promise.all([1, 2].map((n) => trigger(stack, "await-event", { event: "stopped-moved", filter: { n: [n] } })));
    for (const { id } of [canceled, moved]) await stack.waitForRun(id, (r) => r.status === "SUSPENDED", `run ${id} to suspend`);
    await waitFor("both runs' processes to be stopped", async () => ((await taskStates()).size >= 4 ? true : undefined));

    expect((await stack.api<{ status: string }>("POST", `/api/v1/runs/${canceled.id}/cancel`)).status).toBe("CANCELED");
    await waitFor("the canceled run's processes to be gone", async () => ((await taskStates()).size === 2 ? true : undefined));

    await keeper.kill9();
    await waitFor("the killed runner's stopped processes to be gone", async () => ((await taskProcesses(stack)).length === 0 ? true : undefined), { timeoutMs: 10_000 });
    const taker = await runners.start({ name: "taker-d" });
    expect((await sendEvent(stack, "stopped-moved", { n: 2 })).matchedWaitpoints).toBe(1);
    const run = await waitForFinal(stack, moved.id);
    expect(run.output).toMatchObject({ received: { payload: { n: 2 } } });
    expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([["COMPLETED", taker.runnerId]]);
    expect(restoredLines(taker.log()).get(moved.id)).toMatchObject({ fromLocalDump: false });
  });
});
