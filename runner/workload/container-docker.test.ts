import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Docker from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { buildToLayout, openImageStore } from "../../builder/index.ts";
import { describeWorkloadRuntime } from "./conformance.ts";
import { createContainerRuntime } from "./container-runtime.ts";
import { createIpcClient } from "./test-support/ipc-client.ts";
import { dockerAvailable, startDockerService } from "./test-support/docker-service.ts";
import { expectKilledAtMemoryLimit } from "./test-support/memory-hog.ts";

// The container workload on Docker 20.10 (Debian's docker.io), a private dockerd without --experimental:
// tasks run, checkpoints are unavailable (the runner then keeps waiting runs in their process).
const available = await dockerAvailable();
if (!available.ok) console.warn(`skipping the container workload tests on Docker: ${available.reason}`);

if (available.ok) {
  const dir = await mkdtemp(path.join(tmpdir(), "stasis-docker-image-"));
  const built = await buildToLayout({ projectDir: path.resolve(import.meta.dirname, "../../test/fixtures/basic"), outDir: path.join(dir, "oci"), withRuntime: true });
  const fetched = await openImageStore(built.ref).fetch(built.ref, path.join(dir, "cache"));
  const service = await startDockerService();
  // Registered first, so it runs last: after the conformance suite has killed its tasks.
  afterAll(async () => {
    await service.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const options = { socketPath: service.socketPath, rootfs: fetched.rootfsDir, image: { ref: built.ref, digest: built.digest } };
  const runtime = await createContainerRuntime({ ...options, workDir: path.join(dir, "work-a") });
  const docker = new Docker({ socketPath: service.socketPath });

  describe("container runtime on Docker", () => {
    it("says why it has no checkpoints", () => {
      expect(runtime.checkpoints).toEqual({ available: false, reason: expect.stringMatching(/is Docker 20\.10/) });
    });
  });

  describeWorkloadRuntime("container (docker)", { runtime, another: () => createContainerRuntime({ ...options, workDir: path.join(dir, "work-b") }) });

  describe("container runtime on Docker: machine limits", () => {
    it("a task that outgrows its memory is reported as exceeding it, not as a crash", () => expectKilledAtMemoryLimit(runtime));
  });

  describe("container runtime on Docker: the task's environment stays out of the engine", () => {
    it("reaches the task, but not the container's config; no container is left", async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), "stasis-docker-env-"));
      const script = path.join(scratch, "env.mjs");
      const secret = `docker-secret-${Date.now()}`;
      await writeFile(script, [
        'import net from "node:net";',
        "const ipc = new net.Socket({ fd: 3, readable: true, writable: true });",
        'ipc.write(JSON.stringify({ type: "ready", value: process.env.CONTAINER_SECRET }) + "\\n");',
      ].join("\n"));
      try {
        const proc = await runtime.start({ command: process.execPath, args: [script], cwd: scratch, env: { CONTAINER_SECRET: secret }, machine: { cpu: 0.5, memory: 256 } });
        expect(await createIpcClient(proc.ipc).next()).toEqual({ type: "ready", value: secret });
        const inspected = await docker.getContainer(proc.id).inspect();
        expect(JSON.stringify(inspected)).not.toContain(secret);
        expect(inspected.HostConfig.Memory).toBe(256 * 1024 * 1024);
        expect(inspected.HostConfig.NanoCpus).toBe(0.5e9);
        await expect(runtime.checkpoint(proc, path.join(scratch, "ckpt"))).rejects.toThrow(/checkpoints are unavailable/);
        await proc.kill();
        expect(await docker.listContainers({ all: true, filters: { name: [proc.id] } })).toEqual([]);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    });
  });
} else {
  describe.skip(`container workload on Docker (${available.reason})`, () => {
    it("needs dockerd", () => {});
  });
}
