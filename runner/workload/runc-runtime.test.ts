import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildToLayout, openImageStore } from "../../builder/index.ts";
import { describeWorkloadRuntime } from "./conformance.ts";
import { createRuncRuntime, detectRunc } from "./runc-runtime.ts";
import { collect, createIpcClient } from "./test-support/ipc-client.ts";
import { measureRuntimeFigures } from "./test-support/runtime-figures.ts";
import { expectKilledAtMemoryLimit } from "./test-support/memory-hog.ts";

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
    it("a task that outgrows its memory is reported as exceeding it, not as a crash", () => expectKilledAtMemoryLimit(runtime));

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

  describe("runc runtime: the task's environment stays off the disk", () => {
    it("reaches the task, but neither the bundle's config.json, runc's state nor a checkpoint's metadata holds it", async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "stasis-runc-env-"));
      const script = path.join(dir, "env.mjs");
      const secret = `runc-secret-${Date.now()}`;
      await writeFile(script, [
        'import net from "node:net";',
        "const ipc = new net.Socket({ fd: 3, readable: true, writable: true });",
        "ipc.on('data', () => ipc.write(JSON.stringify({ type: 'env', value: process.env.RUNC_SECRET }) + '\\n'));",
        'ipc.write(JSON.stringify({ type: "ready", value: process.env.RUNC_SECRET }) + "\\n");',
      ].join("\n"));
      const workDir = path.join(dir, "work");
      const own = await createRuncRuntime({ rootfs: image.rootfs, workDir });
      try {
        const proc = await own.start({ command: process.execPath, args: [script], cwd: dir, env: { RUNC_SECRET: secret } });
        const ipc = createIpcClient(proc.ipc);
        expect(await ipc.next()).toEqual({ type: "ready", value: secret });
        const files = await readdir(workDir, { recursive: true, withFileTypes: true });
        const configs = files.filter((f) => f.isFile() && f.name === "config.json").map((f) => path.join(f.parentPath, f.name));
        expect(configs).toHaveLength(1);
        const config = await readFile(configs[0]!, "utf8");
        expect(config).not.toContain(secret);
        expect(JSON.parse(config).process.env).toEqual([]);
        const id = path.basename(path.dirname(configs[0]!));
        expect(await readFile(path.join("/run/runc", id, "state.json"), "utf8")).not.toContain(secret);
        if (own.checkpoints.available) {
          const imageDir = path.join(dir, "ckpt");
          await own.checkpoint(proc, imageDir);
          expect(await readFile(path.join(imageDir, "stasis-workload.json"), "utf8")).not.toContain(secret);
          const restored = await own.restore(imageDir, { cwd: dir });
          const again = createIpcClient(restored.ipc);
          again.send({ cmd: "env" });
          expect(await again.next()).toEqual({ type: "env", value: secret });
          await restored.kill();
        } else {
          await proc.kill();
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe.skipIf(!runtime.checkpoints.available)("runc runtime: figures", () => {
    it("measures start → ready, checkpoint and restore → first reply (medians of 3, ~20 MB heap)", async () => {
      console.log(`runc figures (median of 3): ${await measureRuntimeFigures(runtime)}`);
    });
  });
} else {
  describe.skip(`runc workload (${runc.reason})`, () => {
    it("needs runc", () => {});
  });
}
