// processKeepAlive: a process that completed a run of an opted-in task takes the next run of the same
// version and environment — never another environment's or version's, never once restored from a
// checkpoint, never past maxRuns — and each run draws fresh randomness. A task that did not opt in
// gets a fresh process every run. Real server, runner, task processes (and CRIU when it works).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunView, TriggerResponse } from "../schemas/index.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";
import { writeTaskProject } from "./support/task-project.ts";

const TASKS = `
import { randomUUID } from "node:crypto";
import { task, wait } from "stasis/sdk";

/** One id per process, made when the bundle is imported; a count of runs in this process. */
const processId = randomUUID();
let runsHere = 0;
const seen = () => ({ processId, runsHere: ++runsHere, uuid: randomUUID(), random: Math.random(), version: process.env.VERSION_MARK ?? "" });

export const kept = task({ id: "kept", processKeepAlive: { maxRuns: 3 }, run: async () => seen() });
export const single = task({ id: "single", run: async () => seen() });
export const waits = task({
  id: "waits",
  processKeepAlive: true,
  run: async () => {
    await wait.for({ seconds: 3 });
    return seen();
  },
});
`;

interface Seen {
  processId: string;
  runsHere: number;
  uuid: string;
  random: number;
}

let stack: TestStack;
let dir: string;

function writeProject(mark: string): Promise<string> {
  // A comment makes each version's bundle differ (a new deployment, not a no-change rebuild).
  return writeTaskProject(join(dir, `project-${mark}`), "keepalive", `// version ${mark}\n${TASKS}`);
}

async function runOnce(task: string, environment = "development"): Promise<Seen> {
  const { id } = await stack.api<TriggerResponse>("POST", `/api/v1/tasks/${task}/trigger`, { payload: null }, environment);
  const run = await waitForEnd(id, environment);
  expect(run.status).toBe("COMPLETED");
  return run.output as Seen;
}

function waitForEnd(id: string, environment: string): Promise<RunView> {
  return (async () => {
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      const run = await stack.api<RunView>("GET", `/api/v1/runs/${id}`, undefined, environment);
      if (["COMPLETED", "FAILED", "CRASHED", "TIMED_OUT", "CANCELED", "SYSTEM_FAILURE"].includes(run.status)) return run;
    }
    throw new Error(`run ${id} did not end in time`);
  })();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stasis-keepalive-"));
  // Warm spares on too: a spare is handed out once (a run that did not opt in never shares a process).
  stack = await startTestStack({ project: "keepalive", runners: 1, capacity: 2, suspendThresholdMs: 1000, warmProcesses: "slots" });
  const project = await writeProject("a");
  await stack.deploy(project, { environment: "development" });
  await stack.deploy(project, { environment: "staging" });
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("processKeepAlive", () => {
  it("reuses a process for the same version and environment up to maxRuns, with fresh randomness each run", async () => {
    const runs: Seen[] = [];
    for (let i = 0; i < 4; i++) runs.push(await runOnce("kept"));
    // maxRuns 3: three runs in one process, then a new one.
    expect(runs.slice(0, 3).map((r) => r.processId)).toEqual([runs[0].processId, runs[0].processId, runs[0].processId]);
    expect(runs.slice(0, 3).map((r) => r.runsHere)).toEqual([1, 2, 3]);
    expect(runs[3].processId).not.toBe(runs[0].processId);
    expect(runs[3].runsHere).toBe(1);
    expect(new Set(runs.map((r) => r.uuid)).size).toBe(runs.length);
    expect(new Set(runs.map((r) => r.random)).size).toBe(runs.length);
  }, 240_000);

  it("gives a task that did not opt in a fresh process every run, even beside a kept one", async () => {
    const keptRun = await runOnce("kept");
    const singles = [await runOnce("single"), await runOnce("single")];
    for (const s of singles) expect(s.runsHere).toBe(1);
    expect(new Set([keptRun.processId, ...singles.map((s) => s.processId)]).size).toBe(3);
  }, 240_000);

  it("never hands a process to a run of another environment or another version", async () => {
    const dev = [await runOnce("kept"), await runOnce("kept")];
    const staging = [await runOnce("kept", "staging"), await runOnce("kept", "staging")];
    // Each environment reuses its own processes, and only its own.
    const devIds = new Set(dev.map((r) => r.processId));
    for (const s of staging) expect(devIds.has(s.processId)).toBe(false);
    // A new version in development: its first run starts a new process, though the old version's waits idle.
    await stack.deploy(await writeProject("b"), { environment: "development" });
    const next = await runOnce("kept");
    expect(devIds.has(next.processId)).toBe(false);
    expect(next.runsHere).toBe(1);
  }, 240_000);

  it("never keeps a process that was restored from a checkpoint", async (context) => {
    if (!stack.local.checkpointsMode.available) return context.skip();
    const waited = await runOnce("waits");
    const after = await runOnce("waits");
    expect(after.processId).not.toBe(waited.processId);
    expect(after.runsHere).toBe(1);
  }, 240_000);
});
