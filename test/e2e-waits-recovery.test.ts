// Suspended runs outlive their runners: cancel deletes the checkpoint, a runner killed while a run
// is frozen loses nothing, and one killed after restoring a run gives it back from its checkpoint.
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { checkpointFiles, getRun, runnerPool, sendEvent, taskProcesses, trigger, waitForFinal, waitForLog, waitForSuspended } from "./support/e2e-waits.ts";
import { REPO_ROOT, startTestStack, taskScratchDir, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let stack: TestStack;
let scratch: string;
const runners = runnerPool(() => stack);

beforeAll(async () => {
  scratch = await taskScratchDir("stasis-e2e-recovery-");
  // Short leases, so a killed runner's run is recovered within seconds.
  stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "waits", engine: { leaseMs: 3000, heartbeatIntervalMs: 500 } });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/waits"));
});
afterEach(() => runners.killAll());
afterAll(() => stack?.stop());

const ownCheckpoints = async (runId: string) => (await checkpointFiles(stack)).filter((f) => f.includes(runId));

describe("suspended runs and runners that go away", () => {
  it("canceling a SUSPENDED run makes it CANCELED and deletes its checkpoint", async () => {
    await runners.start({ name: "cancel" });
    const { id } = await trigger(stack, "await-event", { event: "never-comes" });
    await waitForSuspended(stack, id);
    expect(await ownCheckpoints(id)).toHaveLength(1);

    const canceled = await stack.api<{ status: string }>("POST", `/api/v1/runs/${id}/cancel`);
    expect(canceled.status).toBe("CANCELED");
    await waitFor("the canceled run's checkpoint to be deleted", async () => (await ownCheckpoints(id)).length === 0, { timeoutMs: 20_000 });
    const sent = await sendEvent(stack, "never-comes", {});
    expect(sent.matchedWaitpoints).toBe(0);
    expect((await getRun(stack, id)).status).toBe("CANCELED");
  });

  it("a runner killed while its run is SUSPENDED loses nothing: another runner resumes it", async () => {
    const runnerA = await runners.start({ name: "doomed-a" });
    const { id } = await trigger(stack, "await-event", { event: "kill9-suspended", filter: { n: [1] } });
    await waitForSuspended(stack, id);
    await runnerA.kill9();

    const runnerB = await runners.start({ name: "survivor-b" });
    expect((await sendEvent(stack, "kill9-suspended", { n: 1 })).matchedWaitpoints).toBe(1);
    const run = await waitForFinal(stack, id);
    expect(run.output).toMatchObject({ received: { event: "kill9-suspended", payload: { n: 1 } } });
    expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([["COMPLETED", runnerB.runnerId]]);
  });

  it("a runner killed right after it restored a run: the run is recovered from its checkpoint as a new attempt", async () => {
    const gate = join(scratch, "gate-open");
    const runnerA = await runners.start({ name: "suspends-a" });
    // Long enough that the checkpoint is done before the wait is over, even on a loaded machine.
    const { id } = await trigger(stack, "sleep-then-gate", { seconds: 5, gate });
    const before = await waitForLog(stack, id, "line 2 before the wait");
    await waitForSuspended(stack, id);
    await runnerA.stop();

    // B restores the run; the code after the wait runs and blocks on the gate; then B dies.
    const runnerB = await runners.start({ name: "restores-b" });
    await waitForLog(stack, id, "waiting for the gate");
    expect((await getRun(stack, id)).status).toBe("EXECUTING");
    await runnerB.kill9();
    await waitFor("the restored process to die with its runner", async () => (await taskProcesses(stack)).length === 0, { timeoutMs: 10_000 });

    const runnerC = await runners.start({ name: "recovers-c" });
    // A new attempt, on the one live runner. (The run view reads the run and its attempts from one
    // snapshot; when it read them apart, B's attempt could already show LOST beside the run still
    // EXECUTING on it, and this looked as if another runner had claimed the run.)
    const recovered = await stack.waitForRun(id, (r) => r.status === "EXECUTING" && (r.attemptDetails ?? []).length === 2, "the run to be recovered elsewhere", 30_000);
    expect(recovered.attemptDetails!.map((a) => [a.number, a.status, a.runnerId])).toEqual([
      [1, "LOST", runnerB.runnerId],
      [2, "EXECUTING", runnerC.runnerId],
    ]);
    await writeFile(gate, "open");
    const run = await waitForFinal(stack, id);

    // Resumed from the checkpoint, not started over: the value from before the wait is the same.
    expect((run.output as { random: number }).random).toBe(before.data!.random);
    expect(run.attemptDetails!.map((a) => [a.number, a.status, a.runnerId])).toEqual([
      [1, "LOST", runnerB.runnerId],
      [2, "COMPLETED", runnerC.runnerId],
    ]);
    await waitFor("the run's checkpoint to be deleted", async () => (await ownCheckpoints(id)).length === 0, { timeoutMs: 10_000 });
  });
});
