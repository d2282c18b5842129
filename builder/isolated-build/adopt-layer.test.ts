import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeLayer, type LayerBlob } from "../layer.ts";
import { adoptLayer } from "./adopt-layer.ts";

let work: string;
let layer: LayerBlob;
const claim = (l: LayerBlob) => ({ digest: l.digest, diffId: l.diffId, size: l.size, mediaType: l.mediaType });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "stasis-adopt-"));
  // A layer that exists elsewhere (another project's blobs): the build knows its digest, not its bytes.
  layer = await writeLayer([{ type: "file", path: "app/secret.txt", data: Buffer.from("another project's layer") }], { blobsDir: join(work, "elsewhere"), mtime: 0 });
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe("adoptLayer believes nothing the build says", () => {
  it("copies a layer whose digest, size and diff id it recomputes", async () => {
    const child = join(work, "ok");
    const own = await writeLayer([{ type: "file", path: "app/index.mjs", data: Buffer.from("ok") }], { blobsDir: join(child, "blobs"), mtime: 0 });
    const adopted = await adoptLayer(claim(own), join(child, "blobs"), join(work, "parent"));
    expect(adopted.digest).toBe(own.digest);
    expect(await readFile(adopted.path)).toEqual(await readFile(own.path));
  });

  it("refuses a blobs dir, or a blob, that is a symlink to files the build could not read", async () => {
    const viaDir = join(work, "dir-link");
    await mkdir(viaDir);
    await symlink(join(work, "elsewhere"), join(viaDir, "blobs"));
    await expect(adoptLayer(claim(layer), join(viaDir, "blobs"), join(work, "parent"))).rejects.toThrow(/is not inside the build's blobs dir/);

    const viaFile = join(work, "file-link");
    await mkdir(join(viaFile, "blobs", "sha256"), { recursive: true });
    await symlink(layer.path, join(viaFile, "blobs", "sha256", layer.digest.slice(7)));
    await expect(adoptLayer(claim(layer), join(viaFile, "blobs"), join(work, "parent"))).rejects.toThrow(/a layer the build wrote is refused/);
  });

  it("refuses a layer that does not match what the build reported", async () => {
    const child = join(work, "lie");
    await mkdir(join(child, "blobs", "sha256"), { recursive: true });
    await writeFile(join(child, "blobs", "sha256", layer.digest.slice(7)), "not the layer");
    await expect(adoptLayer(claim(layer), join(child, "blobs"), join(work, "parent"))).rejects.toThrow(/refused/);
  });
});
