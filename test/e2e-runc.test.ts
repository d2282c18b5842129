// The runc workload end to end: `stasis runner --workload runc` processes run each task in its image's
// own rootfs under runc, enforce the task's machine memory, and suspend/resume with runc checkpoint/restore.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TASK_UID_BASE, detectRunc } from "../runner/index.ts";
import { runLogs, runnerPool, trigger, waitForFinal, waitForLog } from "./support/e2e-waits.ts";
import { REPO_ROOT, startTestStack, type RunnerProcess, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";
import { loggedFigure } from "./support/runner-log.ts";

const run = promisify(execFile);
const runc = await detectRunc();
const FIXTURE = join(REPO_ROOT, "test/fixtures/runc");

/**
 * runc containers that a runner process started and that still exist. `runc list` fails when a
 * container is deleted while it reads the list (`stat /run/runc/<id>: no such file or directory`):
 * ask again then.
 */
async function containersOf(runner: RunnerProcess): Promise<string[]> {
  const { stdout } = await waitFor("runc list to answer", () => run("runc", ["list", "--format", "json"]).catch((error: Error) => {
    if (/no such file or directory/.test(error.message)) return null;
    throw error;
  }), { timeoutMs: 10_000 });
  const all = (JSON.parse(stdout || "null") as Array<{ id: string }> | null) ?? [];
  return all.map((c) => c.id).filter((id) => id.startsWith(`stasis-${runner.child.pid}-`));
}

async function environmentNumber(stack: TestStack, slug: string): Promise<number> {
  const row = await stack.local.db("environments as e").join("projects as p", "p.id", "e.project_id").where({ "p.slug": "runc", "e.slug": slug }).first("e.number");
  return Number(row.number);
}

describe.skipIf(!runc.ok)(`runc workload end to end${runc.ok ? "" : ` (skipped: ${runc.reason})`}`, () => {
  let stack: TestStack;
  const runners = runnerPool(() => stack);

  beforeAll(async () => {
    stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "runc" });
    await stack.deploy(FIXTURE, { withRuntime: true });
  }, 120_000);

  afterEach(() => runners.killAll());
  afterAll(() => stack?.stop());

  it("runs a task inside its image: the image's Node, its root, a container hostname", async () => {
    const runner = await runners.start({ name: "runc-a", workload: "runc" });
    const started = Date.now();
    const { id } = await trigger(stack, "where-am-i", { name: "Ada" });
    const done = await waitForFinal(stack, id, "COMPLETED");
    console.log(`runc e2e: trigger → COMPLETED in ${Date.now() - started} ms`);
    expect(done.output).toEqual({ greeting: "Hello, Ada!", node: "/usr/local/bin/node", hostname: "stasis-task", manifestAtRoot: true });
    expect((await runLogs(stack, id)).map((l) => l.message)).toContain("hello Ada from stasis-task");
    await waitFor("the finished run's container to be gone", async () => (await containersOf(runner)).length === 0, { timeoutMs: 10_000 });
  });

  it("a task over its machine memory fails with 'exceeded memory limit', not a crash", async () => {
    await runners.start({ name: "runc-oom", workload: "runc" });
    const { id } = await trigger(stack, "hog", { mb: 600 });
    const failed = await waitForFinal(stack, id, "FAILED");
    expect(failed.error).toMatchObject({ name: "MemoryLimitExceeded", message: "exceeded memory limit of 256 MB" });
    expect(failed.attempts).toBe(1);
  });

  it("a task under its machine memory completes", async () => {
    await runners.start({ name: "runc-fits", workload: "runc" });
    const { id } = await trigger(stack, "hog", { mb: 100 });
    expect((await waitForFinal(stack, id, "COMPLETED")).output).toEqual({ held: 100 });
  });

  it("a runner killed with SIGKILL leaves no container running", async () => {
    const runner = await runners.start({ name: "runc-dies", workload: "runc", checkpoints: false });
    const { id } = await trigger(stack, "nap", { seconds: 60 });
    await waitForLog(stack, id, "before the nap");
    expect(await containersOf(runner)).toHaveLength(1);
    await runner.kill9();
    // The task exits when its ipc socket to the dead runner closes; runc then removes the container.
    await waitFor("the dead runner's container to be gone", async () => (await containersOf(runner)).length === 0, { timeoutMs: 10_000 });
  });

  it("suspends a waiting run with runc checkpoint and resumes it with runc restore on another runner", async () => {
    const runnerA = await runners.start({ name: "runc-suspend", workload: "runc" });
    // Long enough that a dump slowed by a loaded host still ends before the nap does (else the run goes on in place).
    const { id } = await trigger(stack, "nap", { seconds: 8 });
    const before = await waitForLog(stack, id, "before the nap");
    const suspended = await stack.waitForRun(id, (r) => r.status === "SUSPENDED" || r.status === "COMPLETED" || r.status === "FAILED", `run ${id} to suspend`);
    expect(suspended.status).toBe("SUSPENDED");
    await waitFor("runner A's container to be gone", async () => (await containersOf(runnerA)).length === 0, { timeoutMs: 10_000 });
    await runnerA.stop();

    const runnerB = await runners.start({ name: "runc-resume", workload: "runc" });
    const done = await waitForFinal(stack, id, "COMPLETED");
    // As root the runner sandboxes tasks (STASIS_TASK_SANDBOX=auto): the task runs as its environment's
    // own user, before the checkpoint and after the restore on another runner.
    const uid = process.getuid?.() === 0 ? DEFAULT_TASK_UID_BASE + (await environmentNumber(stack, "development")) : process.getuid?.();
    expect(before.data!.uid).toBe(uid);
    expect(done.output).toMatchObject({ random: before.data!.random, nodes: 100_000, sum: (100_000 * 99_999) / 2, pid: 1, uid });
    expect(done.attemptDetails!.at(-1)!.runnerId).toBe(runnerB.runnerId);
    expect((await runLogs(stack, id)).map((l) => l.message)).toContain("after the nap");
    console.log(`runc e2e: dump ${loggedFigure(runnerA, "run suspended", "dumpMs")} ms, suspend ${loggedFigure(runnerA, "run suspended", "suspendMs")} ms, checkpoint ${loggedFigure(runnerA, "run suspended", "sizeBytes")} bytes`);
  });

  it("a drain checkpoints a running run's container and another runc runner restores it: counter intact, each step once", async () => {
    const STEPS = 40;
    const runnerA = await runners.start({ name: "runc-drain-a", workload: "runc", drainGraceMs: 60_000, drainFinishMs: 0 });
    const { id } = await trigger(stack, "count-steps", { steps: STEPS, stepMs: 250 });
    await waitForLog(stack, id, "counting from zero");
    const runnerB = await runners.start({ name: "runc-drain-b", workload: "runc" });
    await waitFor("the run to count past step 3", async () => (await runLogs(stack, id)).some((l) => l.message === "counted" && Number(l.data?.step) >= 3), { timeoutMs: 60_000 });
    const stopping = Date.now();
    await runnerA.stop();
    const drainMs = Date.now() - stopping;
    expect(runnerA.child.exitCode).toBe(0);
    expect(await containersOf(runnerA)).toEqual([]);
    const done = await waitForFinal(stack, id, "COMPLETED");
    console.log(`runc e2e: drain of 1 running run: runner A exited after ${drainMs} ms, the run completed on B ${Date.now() - stopping} ms after the SIGTERM`);
    expect(done.output).toEqual({ counter: STEPS });
    expect(done.attemptDetails!.map((a) => [a.number, a.status, a.runnerId])).toEqual([[1, "COMPLETED", runnerB.runnerId]]);
    const logs = await runLogs(stack, id);
    expect(logs.filter((l) => l.message === "counting from zero")).toHaveLength(1);
    expect(logs.filter((l) => l.message === "counted").map((l) => Number(l.data?.step))).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    expect(logs.some((l) => l.message.includes("checkpointing the running run"))).toBe(true);
  });
});
