// The container workload end to end: `stasis runner --workload container` runs each task in a container
// of the host's Podman, made from the deployment's image pulled from the registry by digest; a run that
// waits is checkpointed (Podman's exported checkpoint, kept as an OCI artifact in the registry), its
// container is gone while it waits, and a second container runner restores it as a new container with its state.
import Docker from "dockerode";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { openImageRepository } from "../builder/index.ts";
import { podmanAvailable, startPodmanService, type PodmanService } from "../runner/workload/test-support/podman-service.ts";
import { runLogs, runnerPool, trigger, waitForFinal, waitForLog } from "./support/e2e-waits.ts";
import { startRegistry, type TestRegistry } from "./support/registry.ts";
import { REPO_ROOT, startTestStack, type RunnerProcess, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";
import { loggedFigure } from "./support/runner-log.ts";

const podman = await podmanAvailable();
const FIXTURE = join(REPO_ROOT, "test/fixtures/runc");

describe.skipIf(!podman.ok)(`container workload end to end${podman.ok ? "" : ` (skipped: ${podman.reason})`}`, () => {
  let stack: TestStack;
  let registry: TestRegistry;
  let service: PodmanService;
  let docker: Docker;
  let imageDigest: string;
  const runners = runnerPool(() => stack);
  const containerRunner = (name: string, args: string[] = []) => runners.start({ name, workload: "container", args: ["--container-socket", service.socketPath, ...args] });
  /** Checkpoints as OCI artifacts in the registry: the two runners share no checkpoint directory. */
  const registryStore = () => ["--checkpoint-store", "registry", "--checkpoint-repository", `${registry.host}/checkpoints`];
  /** The engine's containers that a runner process made (their names carry its PID). */
  const containersOf = async (runner: RunnerProcess) =>
    (await docker.listContainers({ all: true })).filter((c) => (c.Names ?? []).some((n) => n.replace(/^\//, "").startsWith(`stasis-${runner.child.pid}-`)));

  beforeAll(async () => {
    [registry, service] = await Promise.all([startRegistry(), startPodmanService()]);
    docker = new Docker({ socketPath: service.socketPath });
    process.env.STASIS_ALLOWED_REGISTRIES = registry.host;
    stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "runc" });
    imageDigest = (await stack.deploy(FIXTURE, { withRuntime: true, store: openImageRepository(`${registry.host}/runc`) })).imageDigest ?? "";
  }, 180_000);

  afterEach(() => runners.killAll());
  afterAll(async () => {
    delete process.env.STASIS_ALLOWED_REGISTRIES;
    await stack?.stop();
    await service?.stop();
    await registry?.stop();
  });

  it("runs a task in a container of its image, pulled from the registry by digest", async () => {
    const runner = await containerRunner("container-a");
    const { id } = await trigger(stack, "where-am-i", { name: "Ada" });
    const done = await waitForFinal(stack, id, "COMPLETED", 120_000);
    expect(done.output).toMatchObject({ greeting: "Hello, Ada!", node: "/usr/local/bin/node", manifestAtRoot: true });
    expect((await runLogs(stack, id)).map((l) => l.message)).toContain(`hello Ada from ${(done.output as { hostname: string }).hostname}`);
    const images = await docker.listImages();
    expect(images.some((i) => (i.RepoDigests ?? []).includes(`${registry.host}/runc@${imageDigest}`))).toBe(true);
    await waitFor("the finished run's container to be gone", async () => (await containersOf(runner)).length === 0, { timeoutMs: 10_000 });
  });

  it("a runner killed with SIGKILL leaves no container running (its relay ends the task when the runner's socket closes)", async () => {
    const runner = await runners.start({ name: "container-dies", workload: "container", checkpoints: false, args: ["--container-socket", service.socketPath] });
    const { id } = await trigger(stack, "nap", { seconds: 60 });
    await waitForLog(stack, id, "before the nap", 60_000);
    expect((await containersOf(runner)).map((c) => c.State)).toEqual(["running"]);
    await runner.kill9();
    await waitFor("the dead runner's container to stop", async () => (await containersOf(runner)).every((c) => c.State !== "running"), { timeoutMs: 10_000 });
  });

  it("a waiting run is checkpointed into the registry, has no container while it waits, and resumes on another container runner with its memory", async () => {
    const runnerA = await containerRunner("container-suspend", registryStore());
    // Long enough that a dump slowed by a loaded host still ends before the nap does (else the run goes on in place).
    const { id } = await trigger(stack, "nap", { seconds: 8 });
    const before = await waitForLog(stack, id, "before the nap", 60_000);
    const suspended = await stack.waitForRun(id, (r) => r.status === "SUSPENDED" || r.status === "COMPLETED" || r.status === "FAILED", `run ${id} to suspend`);
    expect(suspended.status).toBe("SUSPENDED");
    const row = await stack.local.db("runs").where({ id }).first("checkpoint_location", "checkpoint_workload");
    expect(row).toMatchObject({ checkpoint_workload: "container" });
    expect(row.checkpoint_location).toContain(`${registry.host}/checkpoints`);
    await waitFor("runner A's container to be gone", async () => (await containersOf(runnerA)).length === 0, { timeoutMs: 10_000 });
    await runnerA.stop();

    const runnerB = await containerRunner("container-resume", registryStore());
    const done = await waitForFinal(stack, id, "COMPLETED");
    expect(done.output).toMatchObject({ random: before.data!.random, nodes: 100_000, sum: (100_000 * 99_999) / 2, pid: before.data!.pid });
    expect(done.attemptDetails!.at(-1)!.runnerId).toBe(runnerB.runnerId);
    expect((await runLogs(stack, id)).map((l) => l.message)).toContain("after the nap");
    await waitFor("runner B's container to be gone", async () => (await containersOf(runnerB)).length === 0, { timeoutMs: 10_000 });
    console.log(`container e2e: dump ${loggedFigure(runnerA, "run suspended", "dumpMs")} ms, suspend ${loggedFigure(runnerA, "run suspended", "suspendMs")} ms, checkpoint ${loggedFigure(runnerA, "run suspended", "sizeBytes")} bytes, restore ${loggedFigure(runnerB, "run restored", "restoreMs")} ms`);
  });
});
