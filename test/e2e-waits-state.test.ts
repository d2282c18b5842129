// What a run holds survives a CRIU suspend and a restore on another runner process; short waits
// and runners without CRIU keep the process alive instead.
import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { getRun, runLogs, runnerPool, taskProcesses, trigger, waitForFinal, waitForLog, waitForSuspended } from "./support/e2e-waits.ts";
import { REPO_ROOT, startTestStack, taskScratchDir, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let stack: TestStack;
let scratch: string;
const runners = runnerPool(() => stack);

beforeAll(async () => {
  scratch = await taskScratchDir("stasis-e2e-state-");
  stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "waits" });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/waits"));
});
afterEach(() => runners.killAll());
afterAll(() => stack?.stop());

describe("durable waits keep the run's state", () => {
  it("keeps a random number, a closure, a several-MB object graph and an open O_APPEND file across a restore elsewhere", async () => {
    const file = join(scratch, "appended.log");
    const runnerA = await runners.start({ name: "state-a" });
    const { id } = await trigger(stack, "state-survives", { file, seconds: 10, mb: 8 });
    const before = await waitForLog(stack, id, "before the wait");
    await waitForSuspended(stack, id);
    const linesAtSuspend = (await readFile(file, "utf8")).split("\n").length;
    await runnerA.stop();

    const runnerB = await runners.start({ name: "state-b" });
    const run = await waitForFinal(stack, id, "COMPLETED");
    const output = run.output as { random: number; counter: number; before: string; after: string; nodes: number; ticks: number };
    // One attempt, restored — not a second attempt that started over (its error says why if so).
    expect(run.attemptDetails, JSON.stringify(run.attemptDetails)).toHaveLength(1);
    expect(output.random).toBe(before.data!.random);
    expect(output.counter).toBe(3);
    expect(output.nodes).toBe(8 * 16);
    expect(output.after).toBe(output.before);
    expect(output.before).toBe(before.data!.before);
    expect(run.attemptDetails!.map((a) => a.runnerId)).toEqual([runnerB.runnerId]);

    // The same fd kept appending after the restore: one file, ticks counting on from where they were.
    const lines = (await readFile(file, "utf8")).trim().split("\n");
    expect(lines.length).toBeGreaterThan(linesAtSuspend);
    expect(lines[0]).toMatch(/^before pid=\d+$/);
    expect(lines.filter((l) => l.startsWith("after pid="))).toHaveLength(1);
    const ticks = lines.filter((l) => l.startsWith("tick ")).map((l) => Number(l.slice(5)));
    expect(ticks).toEqual(Array.from({ length: ticks.length }, (_, i) => i + 1));
    expect(ticks.at(-1)).toBeGreaterThanOrEqual(output.ticks);
  });

  it("ships logs from before and after the restore into one run log, in order", async () => {
    const runnerA = await runners.start({ name: "logs-a" });
    // Long enough that the checkpoint is made before the wait ends, even on a loaded machine.
    const { id } = await trigger(stack, "sleep-then-gate", { seconds: 6 });
    await waitForSuspended(stack, id);
    await runnerA.stop();
    await runners.start({ name: "logs-b" });
    await waitForFinal(stack, id, "COMPLETED");

    const lines = await runLogs(stack, id);
    const mine = lines.filter((l) => l.message.startsWith("line "));
    expect(mine.map((l) => l.message)).toEqual(["line 1 before the wait (attempt 1)", "line 2 before the wait", "line 3 after the wait", "line 4 after the wait"]);
    expect(lines.map((l) => l.seq)).toEqual([...lines.map((l) => l.seq)].sort((a, b) => a - b));
    const times = mine.map((l) => Date.parse(l.ts));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(mine[3]!.data).toEqual(mine[1]!.data); // the same random number on both sides
    // Nothing else: the dying wrappers of the checkpointed process say nothing in the run's log.
    expect(lines.filter((l) => l.level === "error" || l.level === "warn").map((l) => l.message)).toEqual([]);
  });

  it("keeps a wait shorter than the threshold in-process: never SUSPENDED", async () => {
    const runner = await runners.start({ name: "short" });
    const { id } = await trigger(stack, "sleep-for", { ms: 300 });
    const seen = new Set<string>();
    const run = await stack.waitForRun(id, (r) => (seen.add(r.status), ["COMPLETED", "FAILED"].includes(r.status)), "the short wait to finish");
    expect(run.status).toBe("COMPLETED");
    expect(seen.has("SUSPENDED")).toBe(false);
    expect((run.output as { elapsedMs: number }).elapsedMs).toBeGreaterThanOrEqual(300);
    expect(runner.log()).not.toContain("run suspended");
  });

  it("without CRIU a long wait keeps the process alive (WAITING) and completes", async () => {
    await runners.start({ name: "no-criu", checkpoints: false });
    const { id } = await trigger(stack, "sleep-for", { ms: 3000 });
    await stack.waitForRun(id, (r) => r.status === "WAITING", "the run to wait in-process");
    expect((await taskProcesses(stack)).length).toBeGreaterThan(0);
    const seen = new Set<string>();
    const run = await stack.waitForRun(id, (r) => (seen.add(r.status), ["COMPLETED", "FAILED"].includes(r.status)), "the long wait to finish");
    expect(run.status).toBe("COMPLETED");
    expect(seen.has("SUSPENDED")).toBe(false);
    expect((await getRun(stack, id)).attemptDetails).toHaveLength(1);
    await waitFor("the task process to exit", async () => (await taskProcesses(stack)).length === 0);
  });
});
