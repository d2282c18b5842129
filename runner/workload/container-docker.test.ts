import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Docker from "dockerode";
import { afterAll, describe, expect, it } from "vitest";
import { buildToLayout, openImageStore, parseLayoutRef } from "../../builder/index.ts";
import { startRegistry } from "../../test/support/registry.ts";
import { describeWorkloadRuntime } from "./conformance.ts";
import { createContainerRuntime } from "./container-runtime.ts";
import { DOCKER_CHECKPOINT } from "./container-meta.ts";
import { containerdCopies } from "./containerd-leftovers.ts";
import { pollFor } from "./poll.ts";
import { createIpcClient } from "./test-support/ipc-client.ts";
import { dockerAvailable, startDockerService } from "./test-support/docker-service.ts";
import { expectKilledAtMemoryLimit } from "./test-support/memory-hog.ts";
import { measureRuntimeFigures } from "./test-support/runtime-figures.ts";

// The container workload on Docker 20.10 (Debian's docker.io), on three private dockerds: two with
// --experimental, each with its own storage (the conformance suite runs on one and restores on the
// other, as on another host) and one without (tasks run, checkpoints are unavailable: the runner
// then keeps waiting runs in their process).
const run = promisify(execFile);
const available = await dockerAvailable();
if (!available.ok) console.warn(`skipping the container workload tests on Docker: ${available.reason}`);

if (available.ok) {
  const dir = await mkdtemp(path.join(tmpdir(), "stasis-docker-image-"));
  const built = await buildToLayout({ projectDir: path.resolve(import.meta.dirname, "../../test/fixtures/basic"), outDir: path.join(dir, "oci"), withRuntime: true });
  const fetched = await openImageStore(built.ref).fetch(built.ref, path.join(dir, "cache"));
  const [service, elsewhere, plain, registry] = await Promise.all([startDockerService({ experimental: true }), startDockerService({ experimental: true }), startDockerService(), startRegistry()]);
  // Registered first, so it runs last: after the conformance suite has killed its tasks.
  afterAll(async () => {
    await Promise.all([service.stop(), elsewhere.stop(), plain.stop(), registry.stop()]);
    await rm(dir, { recursive: true, force: true });
  });
  const options = { socketPath: service.socketPath, rootfs: fetched.rootfsDir, image: { ref: built.ref, digest: built.digest } };
  const runtime = await createContainerRuntime({ ...options, workDir: path.join(dir, "work-a") });
  const docker = new Docker({ socketPath: service.socketPath });

  describeWorkloadRuntime("container (docker --experimental)", {
    runtime,
    // Another host: its own dockerd and storage, which loads the image before it restores.
    another: () => createContainerRuntime({ ...options, socketPath: elsewhere.socketPath, workDir: path.join(dir, "work-b"), checkpoints: true }),
    noTcpEstablished: "Docker's checkpoint API passes CRIU no --tcp-established",
  });

  describe("container runtime on Docker without --experimental", () => {
    it("runs tasks of an image it pulls from a registry by digest, says why it has no checkpoints, and refuses one", async () => {
      // The same image in a loopback registry (plain HTTP, which Docker allows for loopback by default).
      await run("skopeo", ["copy", "--preserve-digests", "--dest-tls-verify=false", `oci:${parseLayoutRef(built.ref).dir}`, `docker://${registry.host}/stasis-docker:test`]);
      const pulled = { ref: `${registry.host}/stasis-docker@${built.digest}`, digest: built.digest };
      const without = await createContainerRuntime({ ...options, image: pulled, socketPath: plain.socketPath, workDir: path.join(dir, "work-plain") });
      expect(without.checkpoints).toEqual({ available: false, reason: expect.stringMatching(/is Docker 20\.10.* without --experimental/) });
      const proc = await without.start({ command: process.execPath, args: ["-e", "require('net').Socket({ fd: 3 }).write(JSON.stringify({ type: 'ready' }) + '\\n')"], cwd: dir, env: {} });
      expect(await createIpcClient(proc.ipc).next()).toEqual({ type: "ready" });
      await expect(without.checkpoint(proc, path.join(dir, "refused"))).rejects.toThrow(/checkpoints are unavailable/);
      await proc.kill();
      const images = await new Docker({ socketPath: plain.socketPath }).listImages({ digests: true });
      expect(images.flatMap((i) => i.RepoDigests ?? [])).toContain(pulled.ref);
    });
  });

  describe("container runtime on Docker: the container's own files", () => {
    it("refuses to checkpoint a task that changed files in its container (Docker leaves them out), which goes on", async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), "stasis-docker-files-"));
      const script = await writeAnsweringTask(scratch, ['import fs from "node:fs";', 'fs.writeFileSync("/tmp/scratch.txt", "kept in the container");']);
      try {
        const proc = await runtime.start({ command: process.execPath, args: [script], cwd: scratch, env: {} });
        const ipc = createIpcClient(proc.ipc);
        expect(await ipc.next()).toEqual({ type: "ready" });
        await expect(runtime.checkpoint(proc, path.join(scratch, "ckpt"))).rejects.toThrow(/leaves out the files the task changed in its container \(\/tmp/);
        expect(await ipc.request({ cmd: "ping" })).toEqual({ type: "alive" });
        await proc.kill();
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    });
  });

  describe("container runtime on Docker: machine limits", () => {
    it("a task that outgrows its memory is reported as exceeding it, not as a crash", () => expectKilledAtMemoryLimit(runtime));
  });

  describe("container runtime on Docker: the task's environment stays out of the engine", () => {
    it("reaches the task, but neither the container's config nor a checkpoint's metadata; no container is left", async () => {
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
        const imageDir = path.join(scratch, "ckpt");
        await runtime.checkpoint(proc, imageDir);
        expect(await readFile(path.join(imageDir, "stasis-workload.json"), "utf8")).not.toContain(secret);
        const restored = await runtime.restore(imageDir, { cwd: scratch });
        // containerd restores through a temp dir of its own and keeps it (containerd#10166): the task's memory, secret included, must not stay there.
        const dumped = path.join(imageDir, DOCKER_CHECKPOINT);
        expect((await readdir(dumped)).length).toBeGreaterThan(3);
        expect(await containerdCopies(dumped)).toEqual([]);
        expect((await docker.getContainer(restored.id).inspect()).HostConfig.Memory).toBe(256 * 1024 * 1024);
        await restored.kill();
        expect(await docker.listContainers({ all: true, filters: { name: [proc.id, restored.id] } })).toEqual([]);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    });
  });

  describe("container runtime on Docker: a restore in the second of its dump", () => {
    it("restores although containerd still holds the dump's own tar, which a copy made in that second would match byte for byte", async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), "stasis-docker-second-"));
      const script = await writeAnsweringTask(scratch);
      try {
        // The tar's times are whole seconds: the dump starts early in a second, and the restore is asked for in the second all its files were written in (else once more).
        let inSecond = false;
        for (let attempt = 0; attempt < 5 && !inSecond; attempt++) {
          const proc = await runtime.start({ command: process.execPath, args: [script], cwd: scratch, env: {} });
          expect(await createIpcClient(proc.ipc).next()).toEqual({ type: "ready" });
          await pollFor(() => (Date.now() % 1000 < 100 ? true : undefined), 2_000, "the start of a second");
          const imageDir = path.join(scratch, `ckpt-${attempt}`);
          await runtime.checkpoint(proc, imageDir);
          const dumped = path.join(imageDir, DOCKER_CHECKPOINT);
          const written = await Promise.all((await readdir(dumped)).map(async (name) => Math.floor((await stat(path.join(dumped, name))).mtimeMs / 1000)));
          inSecond = written.every((second) => second === Math.floor(Date.now() / 1000));
          const restored = await runtime.restore(imageDir, { cwd: scratch });
          expect(await createIpcClient(restored.ipc).request({ cmd: "ping" })).toEqual({ type: "alive" });
          await restored.kill();
        }
        expect(inSecond).toBe(true);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    });
  });

  // Only when asked (STASIS_FIGURES=1), to keep the suite's time; README's Workloads table has the numbers.
  describe.skipIf(process.env.STASIS_FIGURES !== "1")("container runtime on Docker: figures", () => {
    it("measures start → ready, checkpoint and restore → first reply (medians of 3, ~20 MB heap)", async () => {
      console.log(`container (docker) figures (median of 3): ${await measureRuntimeFigures(runtime)}`);
    });
  });
} else {
  describe.skip(`container workload on Docker (${available.reason})`, () => {
    it("needs dockerd", () => {});
  });
}

/** A task script that says it is ready, then answers every message with "alive"; `first` runs before. */
async function writeAnsweringTask(dir: string, first: string[] = []): Promise<string> {
  const script = path.join(dir, "answering.mjs");
  await writeFile(script, [
    ...first,
    'import net from "node:net";',
    "const ipc = new net.Socket({ fd: 3, readable: true, writable: true });",
    "ipc.on('data', () => ipc.write(JSON.stringify({ type: 'alive' }) + '\\n'));",
    'ipc.write(JSON.stringify({ type: "ready" }) + "\\n");',
  ].join("\n"));
  return script;
}
