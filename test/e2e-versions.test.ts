// Issue 4: runs pinned to immutable versions — a suspended run resumes on its own version's code
// after a newer version is promoted; rollback; PENDING_VERSION until a deployment has the task.
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeploymentView, RunView, TriggerResponse } from "../schemas/index.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
let projectDir: string;
const taskFile = () => join(projectDir, "trigger/which-version.ts");

async function setCodeVersion(version: string): Promise<void> {
  const source = await readFile(taskFile(), "utf8");
  await writeFile(taskFile(), source.replace(/const CODE_VERSION = "[^"]*";/, `const CODE_VERSION = "${version}";`));
}

const trigger = (task: string, payload: unknown, options?: Record<string, unknown>) =>
  stack.api<TriggerResponse>("POST", `/api/v1/tasks/${task}/trigger`, { payload, options });

beforeAll(async () => {
  projectDir = await mkdtemp(join(tmpdir(), "stasis-versioned-"));
  await cp(join(REPO_ROOT, "test/fixtures/versioned"), projectDir, { recursive: true });
  stack = await startTestStack({ project: "versioned", runners: 1, suspendThresholdMs: 500 });
});

afterAll(async () => {
  await stack?.stop();
  await rm(projectDir, { recursive: true, force: true });
});

describe("versions", () => {
  it("keeps a suspended run on its version while new runs use the newly promoted one, and rolls back", async () => {
    const v1 = await stack.deploy(projectDir);
    const waiting = await trigger("which-version", { wait: true, key: "a" });
    await stack.waitForRun(waiting.id, (r) => r.status === "SUSPENDED" || r.status === "WAITING", "the v1 run to wait");

    await setCodeVersion("v2");
    const v2 = await stack.deploy(projectDir);
    expect(v2.version).not.toBe(v1.version);
    expect(v2.imageDigest).not.toBe(v1.imageDigest);

    const fresh = await trigger("which-version", {});
    const freshRun = await stack.waitForRun(fresh.id, (r) => r.status === "COMPLETED", "a new run on v2");
    expect(freshRun.output).toEqual({ before: "v2", after: "v2", deployedVersion: v2.version });

    await stack.api("POST", "/api/v1/events", { event: "go", payload: { key: "a" } });
    const resumed = await stack.waitForRun(waiting.id, (r) => r.status === "COMPLETED", "the v1 run to finish");
    expect(resumed.output).toEqual({ before: "v1", after: "v1", deployedVersion: v1.version });
    expect(resumed.version).toBe(v1.version);

    const rolledBack = await stack.api<DeploymentView>("POST", "/api/v1/deployments/rollback", {});
    expect(rolledBack.version).toBe(v1.version);
    const afterRollback = await trigger("which-version", {});
    const run = await stack.waitForRun(afterRollback.id, (r) => r.status === "COMPLETED", "a run after rollback");
    expect(run.output).toMatchObject({ before: "v1", deployedVersion: v1.version });

    const pinned = await trigger("which-version", {}, { version: v2.version });
    expect((await stack.waitForRun(pinned.id, (r) => r.status === "COMPLETED", "a run pinned to v2")).output).toMatchObject({ before: "v2" });

    // A deployed version's digest and manifest never change, even in SQL.
    await expect(stack.database.db("deployments").where({ version: v1.version }).update({ image_digest: v2.imageDigest })).rejects.toThrow();
  });

  it("holds a run whose promoted version lacks the task as PENDING_VERSION until a promoted deployment has it", async () => {
    await writeFile(join(projectDir, "trigger/brand-new.ts"), `import { task } from "stasis/sdk";\nexport const brandNew = task({ id: "brand-new", run: async (p: { n: number }) => ({ doubled: p.n * 2 }) });\n`);
    const v3 = await stack.deploy(projectDir, { promote: false });
    expect(v3.tasks).toContain("brand-new");

    const handle = await trigger("brand-new", { n: 21 });
    await stack.waitForRun(handle.id, (r) => r.status === "PENDING_VERSION", "the run to wait for a version that has its task");

    await stack.api("POST", `/api/v1/deployments/${v3.version}/promote`, {});
    const done = await stack.waitForRun(handle.id, (r) => r.status === "COMPLETED", "the pending run to run once promoted");
    expect(done.output).toEqual({ doubled: 42 });
    expect(done.version).toBe(v3.version);
  });

  it("refuses a task that no deployment of the environment has, naming it", async () => {
    await expect(trigger("no-such-task", {})).rejects.toThrow(/no-such-task/);
  });
});
