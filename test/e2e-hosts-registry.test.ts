// Runners on separate "hosts" that share nothing but the server and the registry: a run suspended
// on host A resumes on host B through the registry checkpoint store with its memory intact,
// `stasis checkpoints list|gc` shows and reclaims what the registry holds, per project, a drain of
// host A moves its running runs to host B without losing or repeating work, and a host killed with
// kill -9 costs a run with safety checkpoints only the work since its last one.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createRegistryImageStore } from "../builder/index.ts";
import { createRegistryCheckpointStore } from "../runner/index.ts";
import type { z } from "zod";
import type { CheckpointsGcOutput, CheckpointsListOutput, RunView } from "../schemas/index.ts";
import { runCli } from "./support/cli.ts";
import { runLogs, runStory, trigger, waitForFinal, waitForLog, waitForSuspended } from "./support/e2e-waits.ts";
import { createTestNetwork, startHost, type TestHost, type TestNetwork } from "./support/hosts.ts";
import { startRegistry, type TestRegistry } from "./support/registry.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let network: TestNetwork;
let registry: TestRegistry;
let stack: TestStack;
let scratch: string;
let hostCount = 0;
const hosts: TestHost[] = [];
const REPOSITORY = "hosts/checkpoints";

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "stasis-hosts-"));
  network = await createTestNetwork();
  registry = await startRegistry({ address: network.gateway });
  // The server accepts deployments whose image is in this registry (read when its routes register).
  process.env.STASIS_ALLOWED_REGISTRIES = registry.host;
  // A short lease: the kill -9 test waits for it to expire.
  stack = await startTestStack({ project: "waits", runners: 0, host: network.gateway, suspendThresholdMs: 1000, engine: { leaseMs: 6000, heartbeatIntervalMs: 1000 } });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/waits"), { store: createRegistryImageStore({ url: registry.url, repository: "hosts/app" }) });
}, 180_000);

afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.kill9()));
});

afterAll(async () => {
  await stack?.stop();
  await registry?.stop();
  await network?.remove();
  if (scratch) await rm(scratch, { recursive: true, force: true });
  delete process.env.STASIS_ALLOWED_REGISTRIES;
});

// No spare task processes: every host here would boot its own beside the suite's other files, and
// what this file checks (the registry between hosts, drains) does not depend on them; spares are
// checked with their defaults in e2e-warm-spares and the chaos run.
const NO_SPARES = ["--warm-processes", "0"];

async function startHostRunner(name: string, extraArgs: string[] = []): Promise<TestHost> {
  const n = ++hostCount;
  const host = await startHost({
    network,
    n,
    name,
    dir: join(scratch, `host-${n}`),
    cachePath: join(scratch, "image-cache"),
    serverUrl: stack.apiUrl,
    runnerToken: stack.local.runnerToken,
    args: ["--checkpoint-store", "registry", "--checkpoint-repository", `${registry.host}/${REPOSITORY}`, "--allowed-registries", registry.host, "--suspend-threshold", "1000", "--capacity", "4", ...NO_SPARES, ...extraArgs],
    env: { STASIS_REGISTRY_INSECURE: "1" },
  });
  hosts.push(host);
  return host;
}

const store = () => createRegistryCheckpointStore({ url: registry.url, repository: REPOSITORY });

function stasis(args: string[]) {
  return runCli(args, {
    cwd: scratch,
    env: { STASIS_API_URL: stack.apiUrl, STASIS_ADMIN_TOKEN: stack.local.adminToken, STASIS_API_KEY: undefined, STASIS_REGISTRY_INSECURE: "1", STASIS_CHECKPOINT_STORE: "registry", STASIS_CHECKPOINT_REPOSITORY: `${registry.host}/${REPOSITORY}` },
  });
}

async function json<T>(args: string[]): Promise<T> {
  const result = await stasis([...args, "--json"]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}

describe("hosts that share nothing but the server and the registry", () => {
  it("a run suspended on host A resumes on host B from the registry, its memory intact", async () => {
    const hostA = await startHostRunner("host-a");
    const { id } = await trigger(stack, "state-survives", { file: "/dev/null", seconds: 8, mb: 20 });
    const before = await waitForLog(stack, id, "before the wait");
    const suspended = await waitForSuspended(stack, id);
    expect(suspended.attemptDetails!.map((a) => a.runnerId)).toEqual([hostA.runnerId]);
    const stored = await store().list();
    expect(stored.map((c) => c.key.split("/")[0])).toEqual([id]);
    expect(stored[0]!.location).toMatch(new RegExp(`^registry:${registry.host}/${REPOSITORY}@sha256:[0-9a-f]{64}$`));
    expect(stored[0]!.sizeBytes).toBeGreaterThan(20 << 20); // 20 MB of random bytes, sealed, does not compress
    await hostA.stop();
    // Host A's disk is gone (its work dir, and the image cache host B will fill from the registry): nothing of it is needed to resume.
    await rm(join(scratch, "host-1"), { recursive: true, force: true });
    await rm(join(scratch, "image-cache"), { recursive: true, force: true });

    const hostB = await startHostRunner("host-b");
    const run = await waitForFinal(stack, id, "COMPLETED", 120_000);
    const output = run.output as { random: number; counter: number; before: string; after: string; nodes: number };
    expect(run.attemptDetails, JSON.stringify(run.attemptDetails)).toHaveLength(1);
    expect(run.attemptDetails!.map((a) => a.runnerId)).toEqual([hostB.runnerId]);
    expect(output.random).toBe(before.data!.random);
    expect(output.counter).toBe(3);
    expect(output.nodes).toBe(20 * 16);
    expect(output.after).toBe(output.before);
    expect(output.before).toBe(before.data!.before);
    const messages = (await runLogs(stack, id)).map((l) => l.message);
    expect(messages.indexOf("before the wait")).toBeLessThan(messages.indexOf("after the wait"));
    // The checkpoint it resumed from is deleted once the server has the run's end.
    await waitFor("the resumed checkpoint to be deleted from the registry", async () => (await store().list()).length === 0, { timeoutMs: 30_000 });
  }, 240_000);

  it("stasis checkpoints list shows a suspended run's checkpoint in use, gc reclaims an orphan, cancel deletes the rest", async () => {
    const host = await startHostRunner("host-c", ["--health-port", "8081"]);
    const health = (path: string) => fetch(`http://${network.hostAddress(hostCount)}:8081${path}`).then((r) => r.status);
    expect([await health("/livez"), await health("/readyz")]).toEqual([200, 200]);
    const { id } = await trigger(stack, "state-survives", { file: "/dev/null", seconds: 3600, mb: 2 });
    await waitForSuspended(stack, id);
    // An orphan: a checkpoint of a run that has ended (as a runner that died before deleting it leaves one).
    const ended = await trigger(stack, "state-survives", { file: "/dev/null", seconds: 0, mb: 1 });
    await waitForFinal(stack, ended.id, "COMPLETED");
    const images = join(scratch, "orphan-images");
    await mkdir(images, { recursive: true });
    await writeFile(join(images, "pages-1.img"), randomBytes(1 << 20));
    const orphan = await store().put(`${ended.id}/1-1`, images, { key: randomBytes(32) });

    const listed = await json<z.infer<typeof CheckpointsListOutput>>(["checkpoints", "list"]);
    expect(listed.store).toBe(`registry:${registry.host}/${REPOSITORY}`);
    expect(listed.checkpoints.map((c) => [c.runId, c.project, c.runStatus, c.state])).toEqual(
      expect.arrayContaining([
        [id, "waits", "SUSPENDED", "in-use"],
        [ended.id, "waits", "COMPLETED", "orphaned"],
      ]),
    );
    expect(listed.projects).toEqual([{ project: "waits", checkpoints: 2, bytes: expect.any(Number), reclaimableBytes: orphan.sizeBytes }]);
    const human = await stasis(["checkpoints", "list"]);
    expect(human.stdout).toMatch(new RegExp(`^waits\\s+development\\s+${id}\\s+SUSPENDED\\s+.*in-use$`, "m"));

    const gc = await json<z.infer<typeof CheckpointsGcOutput>>(["checkpoints", "gc"]);
    expect(gc).toMatchObject({ dryRun: false, kept: 1, reclaimedBytes: orphan.sizeBytes, failed: [] });
    expect(gc.deleted.map((c) => c.location)).toEqual([orphan.location]);
    expect((await store().list()).map((c) => c.key.split("/")[0])).toEqual([id]);

    // Canceling the suspended run: a runner is told to delete its checkpoint, and does.
    await stack.api("POST", `/api/v1/runs/${id}/cancel`);
    await waitFor("the canceled run's checkpoint to be deleted", async () => (await store().list()).length === 0, { timeoutMs: 30_000 });
    // A preStop hook's GET /drain: the runner stops claiming, is no longer ready, and exits.
    expect(await health("/drain")).toBe(202);
    await waitFor("the drained runner to exit", () => host.child.exitCode !== null || host.child.signalCode !== null, { timeoutMs: 30_000 });
    expect(host.child.exitCode).toBe(0);
  }, 240_000);

  it("a drain of host A checkpoints its running runs and host B resumes them: counters intact, every side effect once", async () => {
    // At least 18 s of steps: host B starts, then host A drains, while they count.
    const STEPS = 60;
    const hostA = await startHostRunner("drain-a", ["--drain-grace", "60000", "--drain-finish", "0"]);
    // One run sleeps between steps, one spins on the CPU (it answers its runner only between steps).
    const sleeping = await trigger(stack, "counting-steps", { steps: STEPS, stepMs: 300 });
    const busy = await trigger(stack, "counting-steps", { steps: STEPS, stepMs: 300, busy: true });
    const ids = [sleeping.id, busy.id];
    // Host B starts once host A has both runs, while they count: on a loaded machine a host's start
    // took longer than the runs had left after step 5, and they ended on host A before the drain.
    await waitFor("both runs to execute on host A", async () => {
      const runs = await Promise.all(ids.map((id) => stack.api<RunView>("GET", `/api/v1/runs/${id}`)));
      return runs.every((r) => r.status === "EXECUTING" && r.attemptDetails!.at(-1)!.runnerId === hostA.runnerId);
    }, { timeoutMs: 60_000 });
    const hostB = await startHostRunner("drain-b");
    for (const id of ids) await waitForLogData(id, "counted", (d) => Number(d.step) >= 5);
    const stopping = Date.now();
    await hostA.stop();
    const drainMs = Date.now() - stopping;
    expect(hostA.child.exitCode).toBe(0);
    // Both run again on host B, in the attempt they started in.
    await waitFor("both runs to execute on host B", async () => {
      const runs = await Promise.all(ids.map((id) => stack.api<RunView>("GET", `/api/v1/runs/${id}`)));
      return runs.every((r) => r.status === "EXECUTING" && r.attemptDetails!.at(-1)!.runnerId === hostB.runnerId);
    }, { timeoutMs: 60_000 });
    const elsewhereMs = Date.now() - stopping;
    console.log(`drain of 2 running runs: host A exited after ${drainMs} ms; both ran on host B ${elsewhereMs} ms after the SIGTERM`);
    for (const id of ids) {
      const run = await waitForFinal(stack, id, "COMPLETED", 120_000);
      const story = await runStory(stack, run);
      expect(run.attemptDetails!.map((a) => [a.number, a.status, a.runnerId]), story).toEqual([[1, "COMPLETED", hostB.runnerId]]);
      expect(run.output, story).toEqual({ counter: STEPS, startedAttempt: 1 });
      const messages = (await runLogs(stack, id)).map((l) => l.message);
      expect(messages.filter((m) => m === "counting from zero")).toHaveLength(1);
      expect(messages.some((m) => m.includes("checkpointing the running run"))).toBe(true);
      expect(await ledgerSteps(id)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
    }
    await waitFor("the handed-over checkpoints to be deleted", async () => (await store().list()).length === 0, { timeoutMs: 30_000 });
  }, 240_000);

  it("a rolling restart of every runner while runs execute restarts no run and repeats no side effect", async () => {
    const drainArgs = ["--drain-grace", "60000", "--drain-finish", "0"];
    const first = [await startHostRunner("roll-a", drainArgs), await startHostRunner("roll-b", drainArgs)];
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await trigger(stack, "counting-steps", { steps: 40, stepMs: 250, busy: i === 0 })).id);
    for (const id of ids) await waitForLogData(id, "counted", (d) => Number(d.step) >= 5);
    const allExecuting = (where: string) =>
      waitFor(`every run to execute on ${where}`, async () => {
        const runs = await Promise.all(ids.map((id) => stack.api<RunView>("GET", `/api/v1/runs/${id}`)));
        return runs.every((r) => r.status === "EXECUTING" || r.status === "COMPLETED");
      }, { timeoutMs: 60_000 });
    // One host at a time: its replacement joins, then the next one is restarted.
    const second: TestHost[] = [];
    for (const [i, old] of first.entries()) {
      const stopping = Date.now();
      await old.stop();
      const stopMs = Date.now() - stopping;
      expect(old.child.exitCode).toBe(0);
      await allExecuting("the hosts left");
      console.log(`rolling restart: host ${i + 1} exited ${stopMs} ms after its SIGTERM; its runs executed elsewhere after ${Date.now() - stopping} ms`);
      second.push(await startHostRunner(`roll-${i}-new`, drainArgs));
    }
    const newIds = new Set(second.map((h) => h.runnerId));
    for (const id of ids) {
      const run = await waitForFinal(stack, id, "COMPLETED", 120_000);
      const story = await runStory(stack, run);
      expect(run.attemptDetails, story).toHaveLength(1);
      expect(run.output, story).toEqual({ counter: 40, startedAttempt: 1 });
      expect(newIds.has(run.attemptDetails![0]!.runnerId!) || run.attemptDetails![0]!.runnerId === first[1]!.runnerId).toBe(true);
      const messages = (await runLogs(stack, id)).map((l) => l.message);
      expect(messages.filter((m) => m === "counting from zero")).toHaveLength(1);
      expect(await ledgerSteps(id)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    }
  }, 300_000);

  it("a host killed with kill -9 mid-run: the run finishes on another host from its last safety checkpoint", async () => {
    const hostA = await startHostRunner("safe-a");
    const { id } = await trigger(stack, "counting-steps-safely", { steps: 40, stepMs: 250, busy: true });
    // At least two safety checkpoints taken and registered, and some steps after them.
    await waitFor("two safety checkpoints", async () => (await runLogs(stack, id)).filter((l) => l.message.startsWith("[stasis] safety checkpoint: the run paused")).length >= 2, { timeoutMs: 60_000 });
    const pauses = (await runLogs(stack, id)).flatMap((l) => /paused (\d+) ms/.exec(l.message)?.[1] ?? []).map(Number);
    console.log(`safety checkpoint pauses (ms): ${pauses.join(", ")}`);
    const stepsBeforeKill = (await ledgerSteps(id)).length;
    await hostA.kill9();
    const hostB = await startHostRunner("safe-b");
    const run = await waitForFinal(stack, id, "COMPLETED", 120_000);
    expect(run.output).toEqual({ counter: 40, startedAttempt: 1 });
    expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([
      ["LOST", hostA.runnerId],
      ["COMPLETED", hostB.runnerId],
    ]);
    const messages = (await runLogs(stack, id)).map((l) => l.message);
    // Not from zero: the counter went on from the checkpoint.
    expect(messages.filter((m) => m === "counting from zero")).toHaveLength(1);
    // Every step done; the steps done again are the last few before the kill (at least once for the span since the checkpoint).
    const steps = await ledgerSteps(id);
    expect([...new Set(steps)]).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    const repeated = [...new Set(steps.filter((step, i) => steps.indexOf(step) !== i))];
    expect(repeated.length).toBeLessThan(stepsBeforeKill);
    if (repeated.length > 0) expect(Math.max(...repeated)).toBeLessThanOrEqual(stepsBeforeKill + 1);
  }, 240_000);
});

/** The steps the run recorded as side effects (child runs tagged with its id), in order, repeats included. */
async function ledgerSteps(runId: string): Promise<number[]> {
  const page = await stack.api<{ data: RunView[] }>("GET", `/api/v1/runs?tag=${runId}&limit=200`);
  return page.data.map((r) => (r.payload as { step: number }).step).sort((a, b) => a - b);
}

async function waitForLogData(runId: string, message: string, check: (data: Record<string, unknown>) => boolean) {
  return waitFor(`run ${runId} to log "${message}"`, async () => (await runLogs(stack, runId)).find((l) => l.message === message && check(l.data ?? {})), { timeoutMs: 60_000 });
}
