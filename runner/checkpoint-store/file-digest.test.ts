// A fetched checkpoint's digest, computed on a worker thread: the same sha256 the store recorded, or a clear failure.
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sha256OffThread } from "./file-digest.ts";

const scratch = await mkdtemp(path.join(tmpdir(), "file-digest-"));
afterAll(() => rm(scratch, { recursive: true, force: true }));

const sha256 = (...parts: Buffer[]) => createHash("sha256").update(Buffer.concat(parts)).digest("hex");

describe("sha256OffThread", () => {
  it("hashes files larger than its read buffer, one or several concatenated, and concurrent calls each get their own", async () => {
    const a = randomBytes(3 * 2 ** 20 + 17);
    const b = randomBytes(5);
    const empty = Buffer.alloc(0);
    await Promise.all([writeFile(path.join(scratch, "a"), a), writeFile(path.join(scratch, "b"), b), writeFile(path.join(scratch, "empty"), empty)]);
    const [one, two, none] = await Promise.all([
      sha256OffThread([path.join(scratch, "a")]),
      sha256OffThread([path.join(scratch, "a"), path.join(scratch, "b")]),
      sha256OffThread([path.join(scratch, "empty")]),
    ]);
    expect(one).toBe(sha256(a));
    expect(two).toBe(sha256(a, b));
    expect(two).not.toBe(one);
    expect(none).toBe(sha256(empty));
  });

  it("fails naming a file it cannot read, and hashes again afterwards", async () => {
    const missing = path.join(scratch, "never-written");
    await expect(sha256OffThread([missing])).rejects.toThrow(/cannot hash the checkpoint: .*never-written/);
    const data = randomBytes(100);
    await writeFile(path.join(scratch, "after"), data);
    expect(await sha256OffThread([path.join(scratch, "after")])).toBe(sha256(data));
  });
});
