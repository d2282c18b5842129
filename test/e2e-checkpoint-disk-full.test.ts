// A checkpoint the store cannot take (its disk is full) does not cost the run its attempt: the
// runner restores the process from the dump it just made and the run waits in-process. Before,
// the attempt failed with CheckpointFailed and the retry ran the code before the wait again (found
// by bench/chaos: repeats after a completed wait in its full-disk windows).
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getRun, runLogs, runnerPool, trigger, waitForFinal } from "./support/e2e-waits.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
let mounted = false;
const runners = runnerPool(() => stack);

beforeAll(async () => {
  stack = await startTestStack({ runners: 0, project: "waits" });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/waits"));
  // The runners' checkpoint store on a 64 KiB tmpfs: no checkpoint fits (a dump is megabytes).
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", stack.local.dirs.checkpoints]);
  mounted = true;
});
afterAll(async () => {
  await runners.killAll();
  if (mounted) execFileSync("umount", ["-l", stack.local.dirs.checkpoints]);
  await stack?.stop();
});

describe("a checkpoint the store cannot take", () => {
  it("leaves the run alive on its runner: the wait ends in-process, the code before it ran once, one attempt", async () => {
    const runner = await runners.start({ name: "disk-full", suspendThresholdMs: 1000 });
    const { id } = await trigger(stack, "durable-sleep", { ms: 4000 });
    const run = await waitForFinal(stack, id, "COMPLETED", 120_000);

    expect(run.output).toEqual({ attempt: 1 });
    expect((await getRun(stack, id)).attemptDetails!.map((a) => a.status)).toEqual(["COMPLETED"]);
    const messages = (await runLogs(stack, id)).map((l) => l.message);
    expect(messages.filter((m) => m === "before the wait")).toHaveLength(1);
    expect(messages.filter((m) => m === "after the wait")).toHaveLength(1);
    // It was dumped (the store refused it), then restored here, and the run log says so.
    expect(messages.some((m) => m.includes("could not store the checkpoint") && m.includes("stays alive here"))).toBe(true);
    expect(runner.log()).toContain("run restored from its unstored dump");
  });
});
