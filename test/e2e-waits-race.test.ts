// A wait that ends while its run is being checkpointed: the runner must resume it locally.
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, it } from "vitest";
import { runnerPool, trigger, waitForFinal } from "./support/e2e-waits.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
const runners = runnerPool(() => stack);
beforeAll(async () => {
  stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "waits" });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/waits"));
});
afterEach(() => runners.killAll());
afterAll(() => stack?.stop());

it("waits just over the threshold end mid-checkpoint and the run still completes", async () => {
  await runners.start({ name: "race" });
  const ids = await Promise.all([1000, 1100, 1200].map(async (ms) => (await trigger(stack, "sleep-for", { ms, times: 2 })).id));
  for (const id of ids) await waitForFinal(stack, id);
});

it("so do they on a runner that keeps its suspended processes stopped: the process goes on where its dump stopped it", async () => {
  await runners.start({ name: "race-stopped", args: ["--keep-stopped", "256"] });
  const ids = await Promise.all([1000, 1100, 1200].map(async (ms) => (await trigger(stack, "sleep-for", { ms, times: 2 })).id));
  for (const id of ids) await waitForFinal(stack, id);
});
