import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ImageStore } from "./image-store.ts";
import { writeLayer } from "./layer.ts";
import { assembleImage, type BuiltImage } from "./oci-image.ts";

export interface ConformanceTarget {
  store: ImageStore;
  /** Overwrites the stored bytes of a blob with other bytes of the same length. */
  tamper(digest: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** A small two-layer image whose app layer holds `text` (and a few KB of noise, so layers differ in size). */
export async function makeTestImage(blobsDir: string, text: string, noiseBytes = 4096): Promise<BuiltImage> {
  const base = await writeLayer([{ type: "file", path: "etc/base.txt", data: Buffer.from("shared base layer\n") }], { blobsDir, mtime: 0 });
  const app = await writeLayer(
    [
      { type: "file", path: "app/hello.txt", data: Buffer.from(text) },
      { type: "file", path: "app/noise.bin", data: randomBytes(noiseBytes) },
      { type: "symlink", path: "app/latest.txt", target: "hello.txt" },
    ],
    { blobsDir, mtime: 1_700_000_000 },
  );
  return assembleImage({ blobsDir, layers: [base, app], entrypoint: ["node", "/app/index.mjs"], env: ["UV_USE_IO_URING=0"], labels: { "stasis.test": text.trim() }, workingDir: "/app", created: "2023-11-14T22:13:20Z" });
}

/** One suite every ImageStore implementation must pass: a new backend is one call to this. */
export function describeImageStoreConformance(name: string, setup: () => Promise<ConformanceTarget>): void {
  describe(`ImageStore conformance: ${name}`, () => {
    let target: ConformanceTarget;
    let work: string;
    let imageA: BuiltImage;
    let imageB: BuiltImage;

    beforeAll(async () => {
      target = await setup();
      work = await mkdtemp(join(tmpdir(), "stasis-conformance-"));
      imageA = await makeTestImage(join(work, "build-a"), "image A\n");
      imageB = await makeTestImage(join(work, "build-b"), "image B\n");
    });
    afterAll(async () => {
      await target?.cleanup();
      if (work) await rm(work, { recursive: true, force: true });
    });

    it("pushes an image and fetches it back, unpacked and verified", async () => {
      const pushed = await target.store.push(imageA, "v1");
      expect(pushed.digest).toBe(imageA.digest);
      expect(pushed.ref.endsWith(`@${imageA.digest}`)).toBe(true);
      expect(pushed.bytesUploaded).toBeGreaterThan(0);
      const fetched = await target.store.fetch(pushed.ref, join(work, "cache-1"));
      expect(fetched.digest).toBe(imageA.digest);
      expect(await readFile(join(fetched.appDir, "hello.txt"), "utf8")).toBe("image A\n");
      expect(await readFile(join(fetched.appDir, "latest.txt"), "utf8")).toBe("image A\n");
      expect(await readFile(join(fetched.rootfsDir, "etc/base.txt"), "utf8")).toBe("shared base layer\n");
      expect(fetched.config.config?.Labels?.["stasis.test"]).toBe("image A");
      expect(await target.store.resolveTag("v1")).toBe(imageA.digest);
      expect(await target.store.resolveTag("missing")).toBeNull();
    });

    it("skips every blob the store already has on a second push", async () => {
      const again = await target.store.push(imageA, "v1");
      expect(again.bytesUploaded).toBe(0);
      expect(again.blobsSkipped).toBe(imageA.layers.length + 1);
      const other = await target.store.push(imageB, "v2");
      expect(other.blobsSkipped).toBe(1); // the shared base layer
      expect(other.bytesUploaded).toBe(imageB.layers[1]!.size + imageB.configBlob.size);
    });

    it("never overwrites a tag that names another digest", async () => {
      await expect(target.store.push(imageB, "v1")).rejects.toThrow(/tag v1 .*already names/);
      expect(await target.store.resolveTag("v1")).toBe(imageA.digest);
    });

    it("fetches one digest once when asked concurrently, and serves it from the cache after", async () => {
      const ref = (await target.store.push(imageB, "v2")).ref;
      const messages: string[] = [];
      const cache = join(work, "cache-2");
      const [a, b] = await Promise.all([target.store.fetch(ref, cache, (m) => messages.push(m)), target.store.fetch(ref, cache, (m) => messages.push(m))]);
      expect(a.rootfsDir).toBe(b.rootfsDir);
      expect(messages.filter((m) => m.startsWith("unpacking"))).toHaveLength(imageB.layers.length);
      const cached = await target.store.fetch(ref, cache, (m) => messages.push(m));
      expect(cached.rootfsDir).toBe(a.rootfsDir);
      expect(messages.filter((m) => m.startsWith("unpacking"))).toHaveLength(imageB.layers.length);
    });

    it("rejects a tampered blob on fetch, naming its digest", async () => {
      const ref = (await target.store.push(imageA, "v1")).ref;
      const layer = imageA.layers[1]!.digest;
      await target.tamper(layer);
      const cache = join(work, "cache-3");
      await expect(target.store.fetch(ref, cache)).rejects.toThrow(layer);
      await expect(readFile(join(cache, imageA.digest.slice(7), "image.json"))).rejects.toThrow();
    });

    it("refuses a bad tag", async () => {
      await expect(target.store.push(imageA, "no/slashes")).rejects.toThrow(/bad image tag/);
    });
  });
}
