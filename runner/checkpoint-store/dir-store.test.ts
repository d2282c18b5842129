import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeCheckpointStore } from "./conformance.ts";
import { createDirCheckpointStore } from "./index.ts";

const SEAL = { key: randomBytes(32) };

describeCheckpointStore("shared directory", async () => {
  const root = await mkdtemp(path.join(tmpdir(), "stasis-dir-store-"));
  return {
    store: createDirCheckpointStore(root),
    peer: createDirCheckpointStore(root),
    cleanup: () => rm(root, { recursive: true, force: true }),
    fileOf: (location) => path.join(root, location.slice("dir:".length)),
  };
});

describe("dir checkpoint store", () => {
  let root: string;
  let imageDir: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "stasis-dir-store-"));
    imageDir = path.join(root, "..", `${path.basename(root)}-images`);
    await mkdir(imageDir);
    await writeFile(path.join(imageDir, "core-1.img"), "core");
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(imageDir, { recursive: true, force: true });
  });

  it("rejects locations outside its root", async () => {
    const store = createDirCheckpointStore(root);
    for (const location of ["dir:../outside.tar.zst.sealed", `dir:${root}/x.tar.zst.sealed`, "dir:a/../../x.tar.zst.sealed", "dir:x.tar.zst", "s3:x.tar.zst.sealed"]) {
      await expect(store.get(location, path.join(root, "..", "never"), { key: SEAL.key, sha256: "0".repeat(64) }), location).rejects.toThrow(/is not a dir:….tar.zst.sealed path inside/);
      await expect(store.delete(location), location).rejects.toThrow(/is not a dir:….tar.zst.sealed path inside/);
    }
  });

  it("leaves nothing behind when a put fails", async () => {
    const store = createDirCheckpointStore(root);
    await expect(store.put("run_x/1", path.join(root, "missing"), SEAL)).rejects.toThrow(/is not a directory/);
    // Packing succeeds but the final rename fails (a directory sits where the file would go).
    await mkdir(path.join(root, "run_x", "2.tar.zst.sealed", "blocker"), { recursive: true });
    await expect(store.put("run_x/2", imageDir, SEAL)).rejects.toThrow(/cannot store checkpoint run_x\/2/);
    await rm(path.join(root, "run_x", "2.tar.zst.sealed"), { recursive: true });
    expect(await readdir(root, { recursive: true })).toEqual(expect.not.arrayContaining([expect.stringMatching(/\.tmp$|\.sealed$/)]));
  });

  it("cleans the key's folders away with its last checkpoint", async () => {
    const store = createDirCheckpointStore(root);
    const { location } = await store.put("run_y/1-1", imageDir, SEAL);
    expect(location).toBe("dir:run_y/1-1.tar.zst.sealed");
    await store.delete(location);
    expect(await readdir(root)).not.toContain("run_y");
  });
});
