import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildToLayout, openImageStore } from "../../builder/index.ts";
import { describeWorkloadRuntime } from "./conformance.ts";
import { createRuncRuntime, detectRunc } from "./runc-runtime.ts";
import { collect, createIpcClient } from "./test-support/ipc-client.ts";

const runc = await detectRunc();
if (!runc.ok) console.warn(`skipping the runc workload tests: ${runc.reason}`);

/** A real image of a fixture project, with the runtime layer (the host's Node and its libraries). */
async function fixtureRootfs(): Promise<{ rootfs: string; dir: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), "stasis-runc-image-"));
  const built = await buildToLayout({ projectDir: path.resolve(import.meta.dirname, "../../test/fixtures/basic"), outDir: path.join(dir, "oci"), withRuntime: true });
  const image = await openImageStore(built.ref).fetch(built.ref, path.join(dir, "cache"));
  return { rootfs: image.rootfsDir, dir };
}

if (runc.ok) {
  const image = await fixtureRootfs();
  afterAll(() => rm(image.dir, { recursive: true, force: true }));
  const runtime = await createRuncRuntime({ rootfs: image.rootfs });

  describeWorkloadRuntime("runc", { runtime, another: () => createRuncRuntime({ rootfs: image.rootfs, checkpoints: true }) });

  describe("runc runtime: machine limits", () => {
    it("a task that outgrows its memory is reported as exceeding it, not as a crash", async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "stasis-runc-oom-"));
      const script = path.join(dir, "hog.mjs");
      await writeFile(script, [
        'import net from "node:net";',
        "const ipc = new net.Socket({ fd: 3, readable: true, writable: true });",
        'ipc.write(JSON.stringify({ type: "ready" }) + "\\n");',
        "const keep = [];",
        "ipc.on('data', () => { for (let i = 0; i < 60; i++) keep.push(Buffer.alloc(10 * 1024 * 1024, 1)); ipc.write(JSON.stringify({ type: 'survived' }) + '\\n'); });",
      ].join("\n"));
      try {
        const proc = await runtime.start({ command: process.execPath, args: [script], cwd: dir, env: {}, machine: { cpu: 1, memory: 256 } });
        const ipc = createIpcClient(proc.ipc);
        expect(await ipc.next()).toEqual({ type: "ready" });
        ipc.send({ cmd: "allocate" });
        expect(await proc.exited).toEqual({ code: null, signal: "SIGKILL", reason: { name: "MemoryLimitExceeded", message: "exceeded memory limit of 256 MB" } });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("the same allocation fits under a larger limit, and the task sees its own root", async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "stasis-runc-fits-"));
      const script = path.join(dir, "fits.mjs");
      await writeFile(script, [
        'import fs from "node:fs";',
        "const keep = [];",
        "for (let i = 0; i < 60; i++) keep.push(Buffer.alloc(10 * 1024 * 1024, 1));",
        'console.log(JSON.stringify({ mb: keep.length * 10, app: fs.existsSync("/app/stasis-manifest.json"), node: process.execPath }));',
      ].join("\n"));
      try {
        const proc = await runtime.start({ command: process.execPath, args: [script], cwd: dir, env: {}, machine: { cpu: 0.5, memory: 1024 } });
        const out = collect(proc.stdout);
        expect(await proc.exited).toEqual({ code: 0, signal: null });
        expect(JSON.parse(out.text())).toEqual({ mb: 600, app: true, node: "/usr/local/bin/node" });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
} else {
  describe.skip(`runc workload (${runc.reason})`, () => {
    it("needs runc", () => {});
  });
}
