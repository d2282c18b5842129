import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Docker from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { buildToLayout, openImageStore } from "../../builder/index.ts";
import { describeWorkloadRuntime } from "./conformance.ts";
import { createContainerRuntime } from "./container-runtime.ts";
import { createIpcClient } from "./test-support/ipc-client.ts";
import { podmanAvailable, startPodmanService } from "./test-support/podman-service.ts";
import { GRAPH_SIZE, writeStatefulTask } from "./test-support/stateful-task.ts";
import { measureRuntimeFigures } from "./test-support/runtime-figures.ts";
import { expectKilledAtMemoryLimit } from "./test-support/memory-hog.ts";

const podman = await podmanAvailable();
if (!podman.ok) console.warn(`skipping the container workload tests: ${podman.reason}`);

if (podman.ok) {
  const dir = await mkdtemp(path.join(tmpdir(), "stasis-container-image-"));
  const built = await buildToLayout({ projectDir: path.resolve(import.meta.dirname, "../../test/fixtures/basic"), outDir: path.join(dir, "oci"), withRuntime: true });
  const fetched = await openImageStore(built.ref).fetch(built.ref, path.join(dir, "cache"));
  const service = await startPodmanService();
  // Registered first, so it runs last: after the conformance suite has killed its tasks.
  afterAll(async () => {
    await service.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const options = { socketPath: service.socketPath, rootfs: fetched.rootfsDir, image: { ref: built.ref, digest: built.digest } };
  const runtime = await createContainerRuntime({ ...options, workDir: path.join(dir, "work-a") });
  const docker = new Docker({ socketPath: service.socketPath });

  describeWorkloadRuntime("container (podman)", { runtime, another: () => createContainerRuntime({ ...options, workDir: path.join(dir, "work-b"), checkpoints: true }) });

  describe.skipIf(!runtime.checkpoints.available)("container runtime: another host", () => {
    it("restores on a second Podman with its own storage, which fetches the image first", async () => {
      const other = await startPodmanService();
      const scratch = await mkdtemp(path.join(tmpdir(), "stasis-container-host-"));
      try {
        const task = await writeStatefulTask();
        const proc = await runtime.start({ command: process.execPath, args: [task.script, task.logFile, String(GRAPH_SIZE)], cwd: task.dir, env: {} });
        const ipc = createIpcClient(proc.ipc);
        const ready = await ipc.next();
        const before = await ipc.request({ cmd: "state" });
        await runtime.checkpoint(proc, path.join(scratch, "ckpt"));
        expect(await new Docker({ socketPath: other.socketPath }).listImages()).toEqual([]);
        const elsewhere = await createContainerRuntime({ socketPath: other.socketPath, workDir: path.join(scratch, "work"), checkpoints: true });
        const restored = await elsewhere.restore(path.join(scratch, "ckpt"), { cwd: task.dir });
        expect(await createIpcClient(restored.ipc).request({ cmd: "state" })).toMatchObject({ random: before.random, pid: ready.pid ?? before.pid, count: 2 });
        await restored.kill();
        await rm(task.dir, { recursive: true, force: true });
      } finally {
        await other.stop();
        await rm(scratch, { recursive: true, force: true });
      }
    });
  });

  describe("container runtime: machine limits", () => {
    it("a task that outgrows its memory is reported as exceeding it, not as a crash", () => expectKilledAtMemoryLimit(runtime));
  });

  describe("container runtime: the task's environment stays out of the engine", () => {
    it("reaches the task, but neither the container's config nor a checkpoint's metadata holds it; no container is left", async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), "stasis-container-env-"));
      const script = path.join(scratch, "env.mjs");
      const secret = `container-secret-${Date.now()}`;
      await writeFile(script, [
        'import net from "node:net";',
        "const ipc = new net.Socket({ fd: 3, readable: true, writable: true });",
        "ipc.on('data', () => ipc.write(JSON.stringify({ type: 'env', value: process.env.CONTAINER_SECRET, limit: process.env.X }) + '\\n'));",
        'ipc.write(JSON.stringify({ type: "ready", value: process.env.CONTAINER_SECRET }) + "\\n");',
      ].join("\n"));
      try {
        const proc = await runtime.start({ command: process.execPath, args: [script], cwd: scratch, env: { CONTAINER_SECRET: secret }, machine: { cpu: 0.5, memory: 256 } });
        const ipc = createIpcClient(proc.ipc);
        expect(await ipc.next()).toEqual({ type: "ready", value: secret });
        const inspected = await docker.getContainer(proc.id).inspect();
        expect(JSON.stringify(inspected)).not.toContain(secret);
        expect(inspected.HostConfig.Memory).toBe(256 * 1024 * 1024);
        const imageDir = path.join(scratch, "ckpt");
        await runtime.checkpoint(proc, imageDir);
        expect(await readFile(path.join(imageDir, "stasis-workload.json"), "utf8")).not.toContain(secret);
        const restored = await runtime.restore(imageDir, { cwd: scratch });
        const again = createIpcClient(restored.ipc);
        again.send({ cmd: "env" });
        expect(await again.next()).toMatchObject({ type: "env", value: secret });
        expect((await docker.getContainer(restored.id).inspect()).HostConfig.Memory).toBe(256 * 1024 * 1024);
        await restored.kill();
        const left = await docker.listContainers({ all: true, filters: { name: [proc.id, restored.id] } });
        expect(left).toEqual([]);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    });
  });

  // ~11 s: only when asked (STASIS_FIGURES=1), to keep the suite's time; README's Workloads table has the numbers.
  describe.skipIf(!runtime.checkpoints.available || process.env.STASIS_FIGURES !== "1")("container runtime: figures", () => {
    it("measures start → ready, checkpoint and restore → first reply (medians of 3, ~20 MB heap)", async () => {
      console.log(`container (podman) figures (median of 3): ${await measureRuntimeFigures(runtime)}`);
    });
  });
} else {
  describe.skip(`container workload (${podman.reason})`, () => {
    it("needs podman", () => {});
  });
}
