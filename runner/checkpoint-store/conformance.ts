import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CheckpointStore } from "./types.ts";

export interface CheckpointStoreFixture {
  store: CheckpointStore;
  /** Another store over the same backing storage, as a different runner would see it. */
  peer?: CheckpointStore;
  cleanup?: () => Promise<void>;
}

/** The behaviour every checkpoint store must have; one call per implementation. */
export function describeCheckpointStore(name: string, factory: () => Promise<CheckpointStoreFixture>): void {
  describe(`checkpoint store: ${name}`, () => {
    let fixture: CheckpointStoreFixture;
    let scratch: string;
    let imageDir: string;

    beforeAll(async () => {
      fixture = await factory();
      scratch = await mkdtemp(path.join(tmpdir(), "stasis-store-"));
      imageDir = path.join(scratch, "images");
      await mkdir(path.join(imageDir, "nested"), { recursive: true });
      await writeFile(path.join(imageDir, "pages-1.img"), Buffer.concat([randomBytes(1 << 20), Buffer.alloc(4 << 20, 7)]));
      await writeFile(path.join(imageDir, "core-1.img"), "core");
      await writeFile(path.join(imageDir, "empty.img"), "");
      await writeFile(path.join(imageDir, "nested", "meta.json"), '{"format":1}\n');
    });
    afterAll(async () => {
      await rm(scratch, { recursive: true, force: true });
      await fixture?.cleanup?.();
    });

    it("gives back exactly the files it was given, compressed while stored", async () => {
      const { location, sizeBytes } = await fixture.store.put("run_1/1-100", imageDir);
      expect(sizeBytes).toBeGreaterThan(1 << 20);
      expect(sizeBytes).toBeLessThan(3 << 20); // 5 MiB in, the zeros compress away
      const dest = path.join(scratch, "restored-1");
      await fixture.store.get(location, dest);
      expect(await listFiles(dest)).toEqual(await listFiles(imageDir));
      for (const file of await listFiles(imageDir)) {
        expect((await readFile(path.join(dest, file))).equals(await readFile(path.join(imageDir, file)))).toBe(true);
      }
    });

    it("keeps checkpoints under different keys apart, and another runner can read them", async () => {
      const other = path.join(scratch, "other");
      await mkdir(other);
      await writeFile(path.join(other, "core-1.img"), "other core");
      const a = await fixture.store.put("run_2/1-100", imageDir);
      const b = await fixture.store.put("run_2/2-200", other);
      expect(a.location).not.toBe(b.location);
      const reader = fixture.peer ?? fixture.store;
      const dest = path.join(scratch, "restored-2");
      await reader.get(b.location, dest);
      expect(await readFile(path.join(dest, "core-1.img"), "utf8")).toBe("other core");
      expect(await listFiles(dest)).toEqual(["core-1.img"]);
    });

    it("deletes a checkpoint for good, and deleting twice is fine", async () => {
      const { location } = await fixture.store.put("run_3/1-100", imageDir);
      await fixture.store.delete(location);
      await fixture.store.delete(location);
      await expect(fixture.store.get(location, path.join(scratch, "restored-3"))).rejects.toThrow(/does not exist/);
    });

    it("refuses keys that are not plain path segments", async () => {
      for (const key of ["", "../escape", "/abs", "a//b", "a/../b", "with space"]) {
        await expect(fixture.store.put(key, imageDir), key).rejects.toThrow(/bad checkpoint key/);
      }
    });

    it("names the problem when the image dir is missing", async () => {
      await expect(fixture.store.put("run_4/1-100", path.join(scratch, "nope"))).rejects.toThrow(/is not a directory/);
    });

    it("refuses a location it did not hand out", async () => {
      await expect(fixture.store.get("not-a-location", path.join(scratch, "restored-5"))).rejects.toThrow(/location/);
      await expect(fixture.store.delete("not-a-location")).rejects.toThrow(/location/);
    });
  });
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = path.join(prefix, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path.join(dir, entry.name), rel)));
    else if ((await stat(path.join(dir, entry.name))).isFile()) out.push(rel);
  }
  return out.sort();
}
