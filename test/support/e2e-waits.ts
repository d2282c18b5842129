// Helpers for the durable-wait end-to-end tests: what a user (or an operator) can observe from
// outside — task processes on the machine, checkpoint files on disk, run logs, events.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { LogLine, RunView } from "../../schemas/index.ts";
import type { RunnerProcess, TestStack } from "./stack.ts";
import { waitFor } from "./wait-for.ts";

/** PIDs of processes running code from the stack's image cache: task processes and their wrappers. */
export async function taskProcesses(stack: TestStack): Promise<number[]> {
  const marker = `${stack.local.dirs.imageCache}/`;
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.split("\0").some((arg) => arg.startsWith(marker))) pids.push(Number(entry));
  }
  return pids;
}

/** Every file under the stack's checkpoint store. */
export async function checkpointFiles(stack: TestStack): Promise<string[]> {
  const root = stack.local.dirs.checkpoints;
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

export async function runLogs(stack: TestStack, runId: string): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for (let after = 0; ; ) {
    const page = await stack.api<{ data: LogLine[]; next: number }>("GET", `/api/v1/runs/${runId}/logs?after=${after}`);
    lines.push(...page.data);
    if (page.data.length === 0 || page.next === after) return lines;
    after = page.next;
  }
}

/** Waits for a log line whose message contains `text`; returns it. */
export function waitForLog(stack: TestStack, runId: string, text: string, timeoutMs = 30_000): Promise<LogLine> {
  return waitFor(`log line "${text}" of ${runId}`, async () => (await runLogs(stack, runId)).find((l) => l.message.includes(text)), { timeoutMs, intervalMs: 100 });
}

export function trigger(stack: TestStack, task: string, payload: unknown, options?: Record<string, unknown>): Promise<{ id: string }> {
  return stack.api("POST", `/api/v1/tasks/${task}/trigger`, { payload, ...(options ? { options } : {}) });
}

export function sendEvent(stack: TestStack, event: string, payload: unknown, id?: string): Promise<{ id: string; duplicate: boolean; matchedWaitpoints: number }> {
  return stack.api("POST", "/api/v1/events", { event, payload, ...(id ? { id } : {}) });
}

/** The run reported SUSPENDED, its process is gone and its checkpoint is on disk. */
export async function waitForSuspended(stack: TestStack, runId: string): Promise<RunView> {
  const tail = async () => (await runLogs(stack, runId)).slice(-15).map((l) => `  ${l.level} ${l.message}`).join("\n");
  const run = await stack.waitForRun(runId, (r) => r.status === "SUSPENDED" || isFinal(r), `run ${runId} to suspend`).catch(async (error: Error) => {
    throw new Error(`${error.message}\nlast log lines:\n${await tail()}`);
  });
  if (run.status !== "SUSPENDED") {
    throw new Error(`run ${runId} ended ${run.status} instead of suspending: ${JSON.stringify(run.error)}\nlast log lines:\n${await tail()}`);
  }
  await waitFor(`the task process of ${runId} to be gone`, async () => (await taskProcesses(stack)).length === 0, { timeoutMs: 10_000 });
  return run;
}

export function isFinal(run: RunView): boolean {
  return ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT", "EXPIRED"].includes(run.status);
}

/** Waits for a final state; fails with the run's error when it is not `status`. */
export async function waitForFinal(stack: TestStack, runId: string, status = "COMPLETED", timeoutMs = 60_000): Promise<RunView> {
  const run = await stack.waitForRun(runId, isFinal, `run ${runId} to finish`, timeoutMs);
  if (run.status !== status) {
    const tail = (await runLogs(stack, runId)).slice(-15).map((l) => `  ${l.level} ${l.message}`).join("\n");
    throw new Error(`run ${runId} ended ${run.status}, expected ${status}: ${JSON.stringify(run.error)}\nlast log lines:\n${tail}`);
  }
  return run;
}

/** What a failed assertion on a run should show: its attempts, and its log lines but the task's `skip` ones. */
export async function runStory(stack: TestStack, run: RunView, skip = "counted"): Promise<string> {
  const attempts = (run.attemptDetails ?? []).map((a) => `  attempt ${a.number} ${a.status} on ${a.runnerId}${a.error ? `: ${a.error.message}` : ""}`);
  const lines = (await runLogs(stack, run.id)).filter((l) => l.message !== skip).map((l) => `  [${l.attempt}] ${l.level} ${l.message}`);
  return `run ${run.id}:\n${attempts.join("\n")}\nlog:\n${lines.join("\n")}`;
}

/** GET a run with its attempts. */
export function getRun(stack: TestStack, runId: string): Promise<RunView> {
  return stack.api<RunView>("GET", `/api/v1/runs/${runId}`);
}

/** Runner processes started by one test, stopped (SIGKILL) after it whatever happened. */
export function runnerPool(stack: () => TestStack) {
  const started: RunnerProcess[] = [];
  return {
    async start(options?: Parameters<TestStack["startRunnerProcess"]>[0]): Promise<RunnerProcess> {
      const runner = await stack().startRunnerProcess(options);
      started.push(runner);
      return runner;
    },
    async killAll(): Promise<void> {
      await Promise.all(started.splice(0).map((r) => r.kill9()));
    },
  };
}
