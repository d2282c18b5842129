// Runner daemons as real `stasis runner` processes: a runner killed with SIGKILL mid-run loses its
// lease and another runner finishes the run as a new attempt; SIGTERM drains (finish, or give back).
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunView } from "../schemas/index.ts";
import { taskProcesses } from "./support/processes.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const FIXTURE = resolve(import.meta.dirname, "fixtures/basic");
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack({ project: "basic", runners: 0, engine: { leaseMs: 3000, heartbeatIntervalMs: 1000 } });
  await stack.deploy(FIXTURE);
});

afterAll(async () => {
  await stack?.stop();
});

async function trigger(task: string, payload: unknown): Promise<string> {
  const { id } = await stack.api<{ id: string }>("POST", `/api/v1/tasks/${task}/trigger`, { payload });
  return id;
}

const executingOn = (runnerId: string) => (run: RunView) => run.status === "EXECUTING" && run.attemptDetails?.at(-1)?.runnerId === runnerId;

describe("lease recovery", () => {
  it("a run on a runner killed with SIGKILL completes on another runner as attempt 2", async () => {
    const first = await stack.startRunnerProcess({ name: "doomed" });
    const id = await trigger("busy", { ms: 2500 });
    await stack.waitForRun(id, executingOn(first.runnerId), "busy to execute on the first runner");
    await waitFor("busy's task process", async () => (await taskProcesses(stack.stateDir)).length > 0);

    await first.kill9();
    // The task process dies with its runner (no orphan keeps running the attempt).
    await waitFor("the killed runner's task process to be gone", async () => (await taskProcesses(stack.stateDir)).length === 0, { timeoutMs: 10_000 });
    const second = await stack.startRunnerProcess({ name: "rescuer" });

    const run = await stack.waitForRun(id, (r) => r.status === "COMPLETED", "the run to complete on the second runner", 60_000);
    expect(run.attempts).toBe(2);
    expect(run.output).toMatchObject({ attempt: 2 });
    expect(run.attemptDetails).toEqual([
      expect.objectContaining({ number: 1, status: "LOST", runnerId: first.runnerId }),
      expect.objectContaining({ number: 2, status: "COMPLETED", runnerId: second.runnerId }),
    ]);
    await second.stop();
  });
});

describe("drain on SIGTERM", () => {
  it("lets a short run finish before the runner exits", async () => {
    // The grace is far longer than the run: on a loaded host the task process alone can take seconds to start.
    const runner = await stack.startRunnerProcess({ name: "drain-short", drainGraceMs: 30_000 });
    const id = await trigger("busy", { ms: 1000 });
    await stack.waitForRun(id, executingOn(runner.runnerId), "busy to execute");
    await runner.stop();
    const run = await stack.api<RunView>("GET", `/api/v1/runs/${id}`);
    expect(run).toMatchObject({ status: "COMPLETED", attempts: 1, output: { attempt: 1 } });
    expect(run.attemptDetails![0].runnerId).toBe(runner.runnerId);
    expect(runner.child.exitCode).toBe(0);
  });

  it("without checkpoints, gives a long run back when the grace period ends; another runner completes it", async () => {
    // With checkpoints a drain hands running runs over instead (e2e-hosts-registry.test.ts): this is the runner that cannot.
    const runner = await stack.startRunnerProcess({ name: "drain-long", checkpoints: false });
    const id = await trigger("busy", { ms: 4500 });
    await stack.waitForRun(id, executingOn(runner.runnerId), "busy to execute");
    const stopping = Date.now();
    await runner.stop(); // --drain-grace 2000
    expect(Date.now() - stopping).toBeLessThan(10_000);
    const givenBack = await stack.api<RunView>("GET", `/api/v1/runs/${id}`);
    expect(["QUEUED", "RETRYING"]).toContain(givenBack.status);
    expect(givenBack.attemptDetails![0]).toMatchObject({ status: "LOST", runnerId: runner.runnerId });
    await waitFor("the given-back task process to be gone", async () => (await taskProcesses(stack.stateDir)).length === 0, { timeoutMs: 10_000 });

    const other = await stack.startRunnerProcess({ name: "takes-over" });
    const run = await stack.waitForRun(id, (r) => r.status === "COMPLETED", "the given-back run to complete", 60_000);
    expect(run).toMatchObject({ attempts: 2, output: { attempt: 2 } });
    expect(run.attemptDetails![1].runnerId).toBe(other.runnerId);
    await other.stop();
  });
});
