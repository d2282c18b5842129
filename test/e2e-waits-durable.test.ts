// Input the server accepted for a wait is never lost: a runner killed after its run started a wait,
// before that wait was checkpointed, and an event (or a child's result) arriving meanwhile — the
// recovered attempt runs the code again, reaches the same wait, and gets what was delivered to it.
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { getRun, runnerPool, sendEvent, trigger, waitForFinal, waitForLog } from "./support/e2e-waits.ts";
import { REPO_ROOT, startTestStack, taskScratchDir, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let stack: TestStack;
let scratch: string;
const runners = runnerPool(() => stack);
const gates: string[] = [];

beforeAll(async () => {
  scratch = await taskScratchDir("stasis-e2e-durable-");
  // Short leases, so a killed runner's run is recovered within seconds.
  stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "waits", engine: { leaseMs: 3000, heartbeatIntervalMs: 500 } });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/waits"));
});
afterEach(async () => {
  // Orphaned task processes of killed runners stop spinning once their gate exists.
  await Promise.all(gates.splice(0).map((g) => writeFile(g, "open")));
  await runners.killAll();
});
afterAll(() => stack?.stop());

const gate = (name: string) => {
  const path = join(scratch, name);
  gates.push(path);
  return path;
};
const waitpointsOf = (runId: string) => stack.database.db("waitpoints").where({ run_id: runId }).orderBy("created_at").select("id", "status", "wait_key");

describe("a wait reached again finds what was delivered to it", () => {
  it("from the start: the runner dies at the run's first wait, the event comes, the new attempt gets it", async () => {
    const open = gate("from-start");
    const runnerA = await runners.start({ name: "dies-a" });
    const { id } = await trigger(stack, "durable-event", { event: "durable-1", gate: open });
    await waitForLog(stack, id, "waiting for the event");
    await stack.waitForRun(id, (r) => r.status === "WAITING", "the run to wait for its event");
    await runnerA.kill9();
    // The runner is dead, its lease still holds: the server accepts the event for the run.
    expect((await sendEvent(stack, "durable-1", { n: 1 })).matchedWaitpoints).toBe(1);
    await writeFile(open, "open");

    const runnerB = await runners.start({ name: "recovers-b" });
    const run = await waitForFinal(stack, id);
    expect(run.output).toMatchObject({ received: { event: "durable-1", payload: { n: 1 } } });
    expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([
      ["LOST", runnerA.runnerId],
      ["COMPLETED", runnerB.runnerId],
    ]);
    // One waitpoint, reached twice; nothing left waiting for an event that will not come again.
    expect(await waitpointsOf(id)).toEqual([expect.objectContaining({ status: "COMPLETED", wait_key: "#1" })]);
  });

  it("from a checkpoint: restored after a frozen first wait, the runner dies at the second; the event comes; the recovered attempt resumes from that checkpoint and gets it", async () => {
    const open = gate("from-checkpoint");
    const runnerA = await runners.start({ name: "freezes-a" });
    const { id } = await trigger(stack, "durable-event", { event: "durable-2", gate: open, sleepMs: 2000 });
    const started = await waitForLog(stack, id, "started");
    await waitForLog(stack, id, "waiting for the event", 60_000);
    await stack.waitForRun(id, (r) => r.status === "WAITING" && r.attempts >= 1, "the run to wait for its event");
    expect(await waitpointsOf(id)).toEqual([expect.objectContaining({ status: "COMPLETED", wait_key: "#1" }), expect.objectContaining({ status: "PENDING", wait_key: "#2" })]);
    await runnerA.kill9();
    expect((await sendEvent(stack, "durable-2", { n: 2 })).matchedWaitpoints).toBe(1);
    await writeFile(open, "open");

    await runners.start({ name: "recovers-b" });
    const run = await waitForFinal(stack, id);
    expect(run.output).toMatchObject({ random: started.data!.random, received: { event: "durable-2", payload: { n: 2 } } });
    expect(run.attemptDetails!.some((a) => a.status === "LOST")).toBe(true);
    expect(await waitpointsOf(id)).toEqual([expect.objectContaining({ status: "COMPLETED", wait_key: "#1" }), expect.objectContaining({ status: "COMPLETED", wait_key: "#2" })]);
  });

  it("triggerAndWait: a parent run again after its runner died gets the same child run back, not a second one", async () => {
    const open = gate("parent");
    const runnerA = await runners.start({ name: "parent-a" });
    const { id } = await trigger(stack, "durable-parent", { gate: open });
    await waitForLog(stack, id, "child triggered");
    const children = () => stack.database.db("runs").where({ parent_run_id: id }).pluck("id");
    await waitFor("the child run to exist", async () => (await children()).length === 1, { timeoutMs: 20_000 });
    await runnerA.kill9();
    await writeFile(open, "open");

    await runners.start({ name: "parent-b" });
    const run = await waitForFinal(stack, id);
    expect(run.output).toEqual({ child: { doubled: 8, version: expect.any(String) } });
    expect(await children()).toHaveLength(1);
    expect((await getRun(stack, id)).attemptDetails!.map((a) => a.status)).toEqual(["LOST", "COMPLETED"]);
  });

  it("plain trigger: a run executed again after its runner died gets the child the first attempt started, not a second one", async () => {
    const open = gate("fire-and-forget");
    const runnerA = await runners.start({ name: "trigger-a" });
    const { id } = await trigger(stack, "durable-fire-and-forget", { gate: open });
    const first = await waitForLog(stack, id, "child triggered");
    const children = () => stack.database.db("runs").where({ parent_run_id: id }).pluck("id");
    expect(await children()).toEqual([first.data!.childId]);
    await runnerA.kill9();
    await writeFile(open, "open");

    await runners.start({ name: "trigger-b" });
    const run = await waitForFinal(stack, id);
    expect((await getRun(stack, id)).attemptDetails!.map((a) => a.status)).toEqual(["LOST", "COMPLETED"]);
    // The second attempt triggered again and was handed the same child.
    expect(run.output).toEqual({ child: first.data!.childId });
    expect(await children()).toEqual([first.data!.childId]);
    await waitForFinal(stack, first.data!.childId as string);
  });
});
