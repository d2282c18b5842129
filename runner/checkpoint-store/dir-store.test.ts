import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeCheckpointStore } from "./conformance.ts";
import { createDirCheckpointStore } from "./index.ts";

describeCheckpointStore("shared directory", async () => {
  const root = await mkdtemp(path.join(tmpdir(), "stasis-dir-store-"));
  return { store: createDirCheckpointStore(root), peer: createDirCheckpointStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
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
    for (const location of ["dir:../outside.tar.zst", `dir:${root}/x.tar.zst`, "dir:a/../../x.tar.zst", "dir:x.tar", "s3:x.tar.zst"]) {
      await expect(store.get(location, path.join(root, "..", "never")), location).rejects.toThrow(/is not a dir:….tar.zst path inside/);
      await expect(store.delete(location), location).rejects.toThrow(/is not a dir:….tar.zst path inside/);
    }
  });

  it("leaves nothing behind when a put fails", async () => {
    const store = createDirCheckpointStore(root);
    await expect(store.put("run_x/1", path.join(root, "missing"))).rejects.toThrow(/is not a directory/);
    // Packing succeeds but the final rename fails (a directory sits where the file would go).
    await mkdir(path.join(root, "run_x", "2.tar.zst", "blocker"), { recursive: true });
    await expect(store.put("run_x/2", imageDir)).rejects.toThrow(/cannot store checkpoint run_x\/2/);
    await rm(path.join(root, "run_x", "2.tar.zst"), { recursive: true });
    expect(await readdir(root, { recursive: true })).toEqual(expect.not.arrayContaining([expect.stringMatching(/\.tmp$|\.tar\.zst$/)]));
  });

  it("cleans the key's folders away with its last checkpoint", async () => {
    const store = createDirCheckpointStore(root);
    const { location } = await store.put("run_y/1-1", imageDir);
    expect(location).toBe("dir:run_y/1-1.tar.zst");
    await store.delete(location);
    expect(await readdir(root)).not.toContain("run_y");
  });
});
