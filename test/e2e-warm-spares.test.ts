// A runner keeps a started, never-used task process per recent deployment by default, so a run of a
// deployment that ran before skips Node's start-up. Each spare runs one run and only what it was
// started for: a change of the environment's variables gets a fresh process, and the spares die with
// their runner. A real `stasis runner` process (sandboxed as root) with its default settings.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunView, TriggerResponse } from "../schemas/index.ts";
import { taskProcesses } from "./support/processes.ts";
import { startTestStack, type RunnerProcess, type TestStack } from "./support/stack.ts";
import { writeTaskProject } from "./support/task-project.ts";
import { waitFor } from "./support/wait-for.ts";

const TASKS = `
import { randomUUID } from "node:crypto";
import { task } from "stasis/sdk";

/** Made when the bundle is imported: one per process. */
const processId = randomUUID();

export const started = task({
  id: "started",
  run: async () => ({ processId, processStartedAt: performance.timeOrigin, mark: process.env.MARK ?? "" }),
});
`;

interface Started {
  processId: string;
  /** When the task's process started (ms since the epoch, this host's clock). */
  processStartedAt: number;
  mark: string;
}

let stack: TestStack;
let dir: string;
let runner: RunnerProcess;
/** Runs so far that got a spare (each one made the runner start the next spare). */
let sparesTaken = 0;

/** One run of `started`, and when it was triggered. */
async function runOnce(): Promise<Started & { triggeredAt: number }> {
  const triggeredAt = Date.now();
  const { id } = await stack.api<TriggerResponse>("POST", "/api/v1/tasks/started/trigger", { payload: null });
  const run = await stack.waitForRun(id, (r: RunView) => !["QUEUED", "EXECUTING", "DELAYED", "RETRYING"].includes(r.status), `run ${id} to end`, 120_000);
  expect(run.status).toBe("COMPLETED");
  return { ...(run.output as Started), triggeredAt };
}

const readySpares = () => runner.log().split("\n").filter((line) => line.includes('"spare task process ready"')).length;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stasis-spares-"));
  const project = await writeTaskProject(join(dir, "project"), "spares", TASKS);
  stack = await startTestStack({ project: "spares" });
  await stack.deploy(project);
  // The runner's own defaults: no --warm-processes. Debug logs say when a spare is ready.
  runner = await stack.startRunnerProcess({ name: "spares", warmProcesses: "default", env: { STASIS_LOG_LEVEL: "debug" } });
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("warm spare processes (the runner's default)", () => {
  it("runs a deployment's next run in a process started before it was triggered, and never one process twice", async () => {
    // No spare before the deployment's first run here.
    const first = await runOnce();
    expect(first.processStartedAt).toBeGreaterThan(first.triggeredAt);

    await waitFor("a spare process to be ready", async () => readySpares() >= 1, { timeoutMs: 60_000 });
    const second = await runOnce();
    expect(second.processStartedAt).toBeLessThan(second.triggeredAt);

    // Back to back: whichever process it gets, it is one that ran nothing before.
    const third = await runOnce();
    expect(new Set([first.processId, second.processId, third.processId]).size).toBe(3);
    sparesTaken = [second, third].filter((r) => r.processStartedAt < r.triggeredAt).length;
  }, 240_000);

  it("starts a fresh process when the environment's variables changed, not a spare holding the old ones", async () => {
    // The first spare and one after each taken: a spare holding the old variables is ready now.
    await waitFor("a spare process to be ready", async () => readySpares() >= 1 + sparesTaken, { timeoutMs: 60_000 });
    await stack.api("POST", "/api/v1/envvars", { variables: { MARK: "second" } });
    const changed = await runOnce();
    expect(changed.mark).toBe("second");
    expect(changed.processStartedAt).toBeGreaterThan(changed.triggeredAt);
  }, 240_000);

  it("kills its spares when the runner dies", async () => {
    await waitFor("spare processes", async () => (await taskProcesses(stack.stateDir)).length > 0, { timeoutMs: 60_000 });
    await runner.kill9();
    await waitFor("no task process left", async () => (await taskProcesses(stack.stateDir)).length === 0, { timeoutMs: 10_000 });
  }, 120_000);

  it("stops its spares when it drains on SIGTERM", async () => {
    // The runner of the tests above is gone: this one takes the run.
    const draining = await stack.startRunnerProcess({ name: "spares-drain", warmProcesses: "default", env: { STASIS_LOG_LEVEL: "debug" } });
    await runOnce();
    await waitFor("its spare to be ready", async () => draining.log().includes('"spare task process ready"'), { timeoutMs: 60_000 });
    await draining.stop();
    expect(draining.child.exitCode).toBe(0);
    await waitFor("no task process left", async () => (await taskProcesses(stack.stateDir)).length === 0, { timeoutMs: 10_000 });
  }, 120_000);
});
