// `stasis dev --checkpoint-store registry`: the in-process runners of the local stack keep their
// checkpoints in the registry, and a run suspends into it and resumes out of it.
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRegistryCheckpointStore } from "../runner/index.ts";
import { checkpointFiles, trigger, waitForFinal, waitForLog, waitForSuspended } from "./support/e2e-waits.ts";
import { startRegistry, type TestRegistry } from "./support/registry.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let registry: TestRegistry;
let stack: TestStack;

beforeAll(async () => {
  registry = await startRegistry();
  stack = await startTestStack({ project: "waits", runners: 1, suspendThresholdMs: 1000, checkpointStore: { kind: "registry", repository: `${registry.host}/dev/checkpoints` } });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/waits"));
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await registry?.stop();
});

it("suspends a run into the registry and resumes it from there", async () => {
  const store = createRegistryCheckpointStore({ url: registry.url, repository: "dev/checkpoints" });
  const { id } = await trigger(stack, "state-survives", { file: "/dev/null", seconds: 5, mb: 2 });
  const before = await waitForLog(stack, id, "before the wait");
  await waitForSuspended(stack, id);
  expect((await store.list()).map((c) => c.key.split("/")[0])).toEqual([id]);
  expect(await checkpointFiles(stack)).toEqual([]); // nothing in the local checkpoint dir
  const run = await waitForFinal(stack, id, "COMPLETED", 120_000);
  expect(run.attemptDetails).toHaveLength(1);
  expect((run.output as { random: number }).random).toBe(before.data!.random);
  await waitFor("the resumed checkpoint to be deleted", async () => (await store.list()).length === 0, { timeoutMs: 30_000 });
}, 180_000);
