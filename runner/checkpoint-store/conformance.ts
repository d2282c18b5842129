import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CheckpointStore } from "./types.ts";

/** Where a checkpoint's bytes lie, so the suite can damage them as an attacker with write access would. */
export type FileOfLocation = (location: string) => string;

export interface CheckpointStoreFixture {
  store: CheckpointStore;
  /** Another store over the same backing storage, as a different runner would see it. */
  peer?: CheckpointStore;
  cleanup?: () => Promise<void>;
  /** The stored file behind a location (for stores that keep files); the tamper tests need it. */
  fileOf?: FileOfLocation;
}

/** The behaviour every checkpoint store must have; one call per implementation. */
export function describeCheckpointStore(name: string, factory: () => Promise<CheckpointStoreFixture>): void {
  describe(`checkpoint store: ${name}`, () => {
    let fixture: CheckpointStoreFixture;
    let scratch: string;
    let imageDir: string;
    const seal = { key: randomBytes(32) };

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
      const { location, sizeBytes, sha256 } = await fixture.store.put("run_1/1-100", imageDir, seal);
      expect(sizeBytes).toBeGreaterThan(1 << 20);
      expect(sizeBytes).toBeLessThan(3 << 20); // 5 MiB in, the zeros compress away
      expect(sha256).toMatch(/^[0-9a-f]{64}$/);
      const dest = path.join(scratch, "restored-1");
      await fixture.store.get(location, dest, { key: seal.key, sha256 });
      expect(await listFiles(dest)).toEqual(await listFiles(imageDir));
      for (const file of await listFiles(imageDir)) {
        expect((await readFile(path.join(dest, file))).equals(await readFile(path.join(imageDir, file)))).toBe(true);
      }
      // Nothing the unpack used (its dir of its own, the opened stream's file) is left beside the dest.
      expect(await entriesNamed(scratch, "restored-1")).toEqual(["restored-1"]);
    });

    it("keeps checkpoints under different keys apart, and another runner can read them", async () => {
      const other = path.join(scratch, "other");
      await mkdir(other);
      await writeFile(path.join(other, "core-1.img"), "other core");
      const a = await fixture.store.put("run_2/1-100", imageDir, seal);
      const b = await fixture.store.put("run_2/2-200", other, seal);
      expect(a.location).not.toBe(b.location);
      const reader = fixture.peer ?? fixture.store;
      const dest = path.join(scratch, "restored-2");
      await reader.get(b.location, dest, { key: seal.key, sha256: b.sha256 });
      expect(await readFile(path.join(dest, "core-1.img"), "utf8")).toBe("other core");
      expect(await listFiles(dest)).toEqual(["core-1.img"]);
    });

    it("deletes a checkpoint for good, and deleting twice is fine", async () => {
      const { location, sha256 } = await fixture.store.put("run_3/1-100", imageDir, seal);
      await fixture.store.delete(location);
      await fixture.store.delete(location);
      await expect(fixture.store.get(location, path.join(scratch, "restored-3"), { key: seal.key, sha256 })).rejects.toThrow(/does not exist/);
    });

    it("lists what it holds, and nothing it deleted", async () => {
      const kept = await fixture.store.put("run_9/1-100", imageDir, seal);
      const dropped = await fixture.store.put("run_9/2-200", imageDir, seal);
      await fixture.store.delete(dropped.location);
      const listed = await (fixture.peer ?? fixture.store).list();
      const mine = listed.filter((c) => c.key.startsWith("run_9/"));
      expect(mine).toEqual([{ location: kept.location, key: "run_9/1-100", sizeBytes: kept.sizeBytes, createdAt: expect.any(Number) }]);
      expect(Math.abs(mine[0]!.createdAt - Date.now())).toBeLessThan(10 * 60_000);
    });

    it("refuses keys that are not plain path segments", async () => {
      for (const key of ["", "../escape", "/abs", "a//b", "a/../b", "with space"]) {
        await expect(fixture.store.put(key, imageDir, seal), key).rejects.toThrow(/bad checkpoint key/);
      }
    });

    it("names the problem when the image dir is missing", async () => {
      await expect(fixture.store.put("run_4/1-100", path.join(scratch, "nope"), seal)).rejects.toThrow(/is not a directory/);
    });

    it("refuses a location it did not hand out", async () => {
      await expect(fixture.store.get("not-a-location", path.join(scratch, "restored-5"), { key: seal.key, sha256: "0".repeat(64) })).rejects.toThrow(/location/);
      await expect(fixture.store.delete("not-a-location")).rejects.toThrow(/location/);
    });

    it("keeps nothing of the images in clear", async () => {
      const marker = `stasis-secret-${randomBytes(8).toString("hex")}`;
      const secretDir = path.join(scratch, "secret");
      await mkdir(secretDir);
      await writeFile(path.join(secretDir, "pages-1.img"), `${marker}`.repeat(1000));
      const { location } = await fixture.store.put("run_6/1-100", secretDir, seal);
      if (!fixture.fileOf) return;
      const stored = await readFile(fixture.fileOf(location));
      expect(stored.includes(marker)).toBe(false);
      expect(stored.includes(Buffer.from("pages-1.img"))).toBe(false); // not even the tar's file names
    });

    it("refuses a checkpoint whose sha256 is not the recorded one, restoring nothing", async () => {
      const { location } = await fixture.store.put("run_7/1-100", imageDir, seal);
      const dest = path.join(scratch, "restored-7");
      await expect(fixture.store.get(location, dest, { key: seal.key, sha256: "a".repeat(64) })).rejects.toThrow(
        /CheckpointIntegrityError|checkpoint .* sha256 [0-9a-f]{64}.* does not match the sha256 a{64}/,
      );
      await expect(stat(dest)).rejects.toThrow(/ENOENT/);
    });

    it("refuses a checkpoint with a flipped byte, or sealed under another key, restoring nothing", async () => {
      if (!fixture.fileOf) return;
      const { location, sha256 } = await fixture.store.put("run_8/1-100", imageDir, seal);
      const file = fixture.fileOf(location);
      const handle = await open(file, "r+");
      const at = Math.floor((await handle.stat()).size / 2);
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, at);
      byte[0] ^= 0x01;
      await handle.write(byte, 0, 1, at);
      await handle.close();
      const dest = path.join(scratch, "restored-8");
      const refused = await fixture.store.get(location, dest, { key: seal.key, sha256 }).catch((error: Error) => error);
      expect(refused).toBeInstanceOf(Error);
      expect((refused as Error).name).toBe("CheckpointIntegrityError");
      expect((refused as Error).message).toMatch(/does not match the sha256/);
      await expect(stat(dest)).rejects.toThrow(/ENOENT/);
      // The right digest but the wrong key (a digest taken by whoever swapped the file): GCM refuses it.
      const other = await fixture.store.put("run_8/2-200", imageDir, { key: randomBytes(32) });
      const swapped = await fixture.store.get(other.location, dest, { key: seal.key, sha256: other.sha256 }).catch((error: Error) => error);
      expect((swapped as Error).name).toBe("CheckpointIntegrityError");
      expect((swapped as Error).message).toMatch(/does not open under its key/);
      await expect(stat(dest)).rejects.toThrow(/ENOENT/);
      expect(await entriesNamed(scratch, "restored-8")).toEqual([]);
    });
  });
}

/** The entries of `dir` whose name starts with `prefix`. */
async function entriesNamed(dir: string, prefix: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.startsWith(prefix));
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
