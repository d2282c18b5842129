import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { describeImageStoreConformance, makeTestImage } from "./image-store.conformance.ts";
import { blobPath } from "./layer.ts";
import { createLayoutImageStore, parseLayoutRef } from "./layout-store.ts";
import { openImageStore } from "./open-image-store.ts";

const run = promisify(execFile);

describeImageStoreConformance("OCI image layout", async () => {
  const dir = await mkdtemp(join(tmpdir(), "stasis-layout-"));
  return {
    store: createLayoutImageStore(dir),
    async tamper(digest) {
      const path = blobPath(join(dir, "blobs"), digest);
      const bytes = await readFile(path);
      bytes[bytes.length - 10] ^= 0xff;
      await writeFile(path, bytes);
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe("OCI image layout", () => {
  it("is accepted by skopeo and umoci, with the tag as ref.name", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stasis-layout-tools-"));
    try {
      const image = await makeTestImage(join(dir, "build"), "checked by tools\n");
      const pushed = await createLayoutImageStore(join(dir, "layout")).push(image, "20261128.1");
      const inspect = JSON.parse((await run("skopeo", ["inspect", `oci:${join(dir, "layout")}:20261128.1`])).stdout);
      expect(inspect.Digest).toBe(image.digest);
      await run("umoci", ["unpack", "--image", `${join(dir, "layout")}:20261128.1`, join(dir, "bundle")]);
      expect(await readFile(join(dir, "bundle", "rootfs", "app", "hello.txt"), "utf8")).toBe("checked by tools\n");
      expect(openImageStore(pushed.ref).kind).toBe("oci-layout");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("parses layout references", () => {
    expect(parseLayoutRef("oci-layout:/x/y@sha256:" + "a".repeat(64))).toEqual({ dir: "/x/y", digest: "sha256:" + "a".repeat(64) });
    expect(parseLayoutRef("oci-layout:/x/y:v1")).toEqual({ dir: "/x/y", tag: "v1" });
    expect(() => parseLayoutRef("oci-layout:/x/y")).toThrow(/needs @sha256/);
  });
});
