// Issue 10 end to end: per-environment variables reach real task processes (in-process runner,
// real CRIU), their values never reach the run logs, and a rotated master key keeps runs working.
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callStasisApi } from "../builder/index.ts";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createDirCheckpointStore, createImageCache, createProcessRuntime, createRunner, detectRunc, type Runner } from "../runner/index.ts";
import type { LogLine, RunView } from "../schemas/index.ts";
import { createKeyring, createServer, freePort, parseMasterKey, type StasisServer } from "../server/index.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";
import pino from "pino";

const FIXTURE = resolve(import.meta.dirname, "fixtures/envvars");
const KEY_A = randomBytes(32).toString("base64");
const KEY_B = randomBytes(32).toString("base64");
const PRODUCTION_SECRET = `prod-${randomBytes(6).toString("hex")}`;
const PREVIEW_SECRET = `preview-${randomBytes(6).toString("hex")}`;
const PREVIEW = "preview/pr-7";

const runcAvailable = await detectRunc();
let stack: TestStack;

/** Files under `dir` (recursively) whose name passes `keep`. */
async function findFiles(dir: string, keep: (name: string) => boolean): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile() && keep(e.name)).map((e) => join(e.parentPath, e.name));
}
let rotated: StasisServer | null = null;
let rotatedRunner: Runner | null = null;

async function logsOf(apiUrl: string, key: string, runId: string): Promise<string[]> {
  const page = await callStasisApi<{ data: LogLine[] }>(apiUrl, key, "GET", `/api/v1/runs/${runId}/logs?limit=1000`);
  return page.data.map((line) => line.message);
}

async function runToEnd(apiUrl: string, key: string, payload: unknown): Promise<{ run: RunView; logs: string[] }> {
  const { id } = await callStasisApi<{ id: string }>(apiUrl, key, "POST", "/api/v1/tasks/show-env/trigger", { payload });
  const run = await waitFor(`run ${id} to finish`, async () => {
    const view = await callStasisApi<RunView>(apiUrl, key, "GET", `/api/v1/runs/${id}`);
    return ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT"].includes(view.status) ? view : null;
  }, { timeoutMs: 60_000 });
  return { run, logs: await logsOf(apiUrl, key, id) };
}

/** Polls until the run is SUSPENDED; a timeout shows the run's log (a failed checkpoint says why there). */
async function waitForSuspended(apiUrl: string, key: string, id: string): Promise<void> {
  try {
    await waitFor(`run ${id} to be suspended`, async () => (await callStasisApi<RunView>(apiUrl, key, "GET", `/api/v1/runs/${id}`)).status === "SUSPENDED", { timeoutMs: 90_000 });
  } catch (error) {
    throw new Error(`${(error as Error).message}\nrun log:\n${(await logsOf(apiUrl, key, id)).join("\n")}`);
  }
}

beforeAll(async () => {
  stack = await startTestStack({ project: "envvars", runners: 1, keyring: createKeyring(parseMasterKey(KEY_A)), taskEnv: { HOST_WIDE: "from-env-file", REGION: "host-default" } });
  const preview = await callStasisApi<{ apiKey: string }>(stack.apiUrl, stack.local.adminToken, "POST", "/api/v1/admin/projects/envvars/environments", { slug: PREVIEW });
  stack.keys[PREVIEW] = preview.apiKey;
  await stack.deploy(FIXTURE, { environment: "production" });
  await stack.deploy(FIXTURE, { environment: PREVIEW });
  // Production through its own key; previews through the shared `preview` set (admin).
  await callStasisApi(stack.apiUrl, stack.keys.production, "POST", "/api/v1/envvars", { variables: { GREETING_SECRET: PRODUCTION_SECRET, REGION: "eu-prod" } });
  await callStasisApi(stack.apiUrl, stack.local.adminToken, "POST", "/api/v1/admin/projects/envvars/environments/preview/envvars", { variables: { GREETING_SECRET: PREVIEW_SECRET } });
}, 120_000);

afterAll(async () => {
  await rotatedRunner?.drain(2_000);
  await rotated?.close();
  await stack?.stop();
});

describe("environment variables in task processes", () => {
  it("production and a preview each get their own value in one run each, and the run logs show [redacted:KEY]", async () => {
    const prod = await runToEnd(stack.apiUrl, stack.keys.production, {});
    expect(prod.run.status).toBe("COMPLETED");
    expect(prod.run.output).toEqual({ length: PRODUCTION_SECRET.length });
    expect(prod.logs).toContain("secret is [redacted:GREETING_SECRET]");
    // The environment's REGION wins over the runner's --env-file; what it does not set comes from there.
    expect(prod.logs).toContain("region is [redacted:REGION] and host-wide is from-env-file");

    const preview = await runToEnd(stack.apiUrl, stack.keys[PREVIEW], {});
    expect(preview.run.status).toBe("COMPLETED");
    expect(preview.run.output).toEqual({ length: PREVIEW_SECRET.length });
    expect(preview.logs).toContain("secret is [redacted:GREETING_SECRET]");
    expect(preview.logs).toContain("region is host-default and host-wide is from-env-file");

    for (const line of [...prod.logs, ...preview.logs]) {
      expect(line).not.toContain(PRODUCTION_SECRET);
      expect(line).not.toContain(PREVIEW_SECRET);
    }
  });

  it("a restored process keeps the environment it was frozen with; the next run gets the new value", async () => {
    if (!stack.local.checkpointsMode.available) throw new Error(`this test needs CRIU: ${stack.local.checkpointsMode.reason}`);
    const key = stack.keys.production;
    const { id } = await callStasisApi<{ id: string }>(stack.apiUrl, key, "POST", "/api/v1/tasks/show-env/trigger", { payload: { waitFor: "go-on" } });
    await waitForSuspended(stack.apiUrl, key, id);
    const changed = `changed-${randomBytes(6).toString("hex")}`;
    await callStasisApi(stack.apiUrl, key, "POST", "/api/v1/envvars", { variables: { GREETING_SECRET: changed } });
    await callStasisApi(stack.apiUrl, key, "POST", "/api/v1/events", { event: "go-on", payload: null });
    const run = await waitFor("the restored run to finish", async () => {
      const view = await callStasisApi<RunView>(stack.apiUrl, key, "GET", `/api/v1/runs/${id}`);
      return view.status === "COMPLETED" || view.status === "FAILED" ? view : null;
    }, { timeoutMs: 60_000 });
    expect(run.status).toBe("COMPLETED");
    expect(run.output).toEqual({ length: PRODUCTION_SECRET.length, sameAfterRestore: true });
    const logs = await logsOf(stack.apiUrl, key, id);
    // The old value is still redacted after the change: the runner redacts with its claim's values.
    expect(logs).toContain("after restore secret is [redacted:GREETING_SECRET]");
    expect(logs.join("\n")).not.toContain(PRODUCTION_SECRET);

    const next = await runToEnd(stack.apiUrl, key, {});
    expect(next.run.output).toEqual({ length: changed.length });
    expect(next.logs).toContain("secret is [redacted:GREETING_SECRET]");
    expect(next.logs.join("\n")).not.toContain(changed);
  });

  it.skipIf(!runcAvailable.ok)("under the runc workload too: the value reaches the container, its checkpoint metadata holds no environment, and the restored task keeps it", async () => {
    await stack.local.runners[0]!.drain(5_000);
    await stack.deploy(FIXTURE, { environment: "staging", withRuntime: true });
    const secret = `staging-${randomBytes(6).toString("hex")}`;
    await callStasisApi(stack.apiUrl, stack.keys.staging, "POST", "/api/v1/envvars", { variables: { GREETING_SECRET: secret } });
    const runner = await stack.startRunnerProcess({ name: "runc-envvars", workload: "runc", suspendThresholdMs: 1000 });
    try {
      const key = stack.keys.staging;
      const { id } = await callStasisApi<{ id: string }>(stack.apiUrl, key, "POST", "/api/v1/tasks/show-env/trigger", { payload: { waitFor: "runc-go" } });
      await waitForSuspended(stack.apiUrl, key, id);
      // Stored checkpoints are sealed (test/security/checkpoint-seals.test.ts): the value shows in none of their bytes.
      const sealed = await findFiles(stack.local.dirs.checkpoints, (name) => name.endsWith(".tar.zst.sealed"));
      expect(sealed.length).toBeGreaterThan(0);
      for (const file of sealed) expect((await readFile(file)).includes(secret)).toBe(false);
      await callStasisApi(stack.apiUrl, key, "POST", "/api/v1/events", { event: "runc-go", payload: null });
      const run = await waitFor("the restored runc run to finish", async () => {
        const view = await callStasisApi<RunView>(stack.apiUrl, key, "GET", `/api/v1/runs/${id}`);
        return view.status === "COMPLETED" || view.status === "FAILED" ? view : null;
      }, { timeoutMs: 90_000 });
      const logs = await logsOf(stack.apiUrl, key, id);
      expect(run.status, logs.join("\n")).toBe("COMPLETED");
      expect(run.output).toEqual({ length: secret.length, sameAfterRestore: true });
      expect(logs).toContain("secret is [redacted:GREETING_SECRET]");
      expect(logs).toContain("after restore secret is [redacted:GREETING_SECRET]");
      expect(runner.log()).not.toContain(secret);
    } finally {
      await runner.stop();
    }
  });

  it("after rotate-key (servers holding the new key and the old one as previous), new runs still get their values", async () => {
    // The rolling restart: a server with the new key and the previous one, then the rotation on it.
    await stack.local.runners[0]!.drain(5_000);
    const port = await freePort();
    rotated = await createServer({ db: stack.local.db, adminToken: stack.local.adminToken, runnerToken: stack.local.runnerToken, logger: false, keyring: createKeyring(parseMasterKey(KEY_B), parseMasterKey(KEY_A)) });
    await rotated.app.listen({ host: "127.0.0.1", port });
    const apiUrl = `http://127.0.0.1:${port}`;
    const result = await callStasisApi<{ rewrapped: number; total: number; masterKeyId: string }>(apiUrl, stack.local.adminToken, "POST", "/api/v1/admin/encryption/rotate-key");
    expect(result).toEqual({ rewrapped: 1, total: 1, masterKeyId: parseMasterKey(KEY_B).id });
    const wrappedBy = await stack.local.db("project_data_keys").pluck("master_key_id");
    expect(wrappedBy).toEqual([parseMasterKey(KEY_B).id]);

    rotatedRunner = createRunner({
      serverUrl: apiUrl,
      runnerToken: stack.local.runnerToken,
      name: "after-rotation",
      capacity: 2,
      runtime: await createProcessRuntime({ workDir: stack.local.dirs.work }),
      checkpoints: createDirCheckpointStore(stack.local.dirs.checkpoints),
      appDirFor: createImageCache(stack.local.dirs.imageCache),
      workDir: stack.local.dirs.work,
      log: pino({ level: "warn" }),
    });
    await rotatedRunner.start();
    const preview = await runToEnd(apiUrl, stack.keys[PREVIEW], {});
    expect(preview.run.output).toEqual({ length: PREVIEW_SECRET.length });
    expect(preview.logs).toContain("secret is [redacted:GREETING_SECRET]");
    const revealed = await callStasisApi<{ value: string }>(apiUrl, stack.keys[PREVIEW], "GET", "/api/v1/envvars/GREETING_SECRET");
    expect(revealed.value).toBe(PREVIEW_SECRET);
  });
});
