import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDirCheckpointStore } from "./checkpoint-store/index.ts";
import { createLocalCheckpoints } from "./local-checkpoints.ts";

const SEAL = { key: randomBytes(32) };

describe("local checkpoints (a runner's own dumps kept for a resume here)", () => {
  let root: string;
  let workDir: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "stasis-local-cp-"));
    workDir = path.join(root, "work");
    await mkdir(workDir, { mode: 0o700 });
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  /** A dump as suspend.ts leaves it: images/ and resume.json, under the work dir. */
  async function dump(name: string, text: string): Promise<string> {
    const dir = path.join(workDir, "checkpoints", name);
    await mkdir(path.join(dir, "images"), { recursive: true });
    await writeFile(path.join(dir, "images", "pages-1.img"), text);
    await writeFile(path.join(dir, "resume.json"), JSON.stringify({ callId: 1 }));
    return dir;
  }

  async function stored(store: ReturnType<typeof createDirCheckpointStore>, name: string, text: string) {
    const dir = await dump(name, text);
    const put = await store.put(`run_${name}/1-1`, dir, SEAL);
    return { dir, ...put };
  }

  it("serves a kept dump without the store, and the sealed copy once it is gone", async () => {
    const inner = createDirCheckpointStore(path.join(root, "store"));
    const hits: string[] = [];
    const local = createLocalCheckpoints(inner, { workDir, maxBytes: 1 << 20, onHit: (location) => hits.push(location) });
    const a = await stored(inner, "a", "memory of a");
    expect(await local.keep(a.location, a.dir, 100)).toBe(true);

    const first = path.join(root, "restore-1");
    await local.store.get(a.location, first, { key: SEAL.key, sha256: a.sha256 });
    expect(hits).toEqual([a.location]);
    expect(await readFile(path.join(first, "images", "pages-1.img"), "utf8")).toBe("memory of a");
    expect(JSON.parse(await readFile(path.join(first, "resume.json"), "utf8"))).toEqual({ callId: 1 });

    // Taken once: the next resume of the same checkpoint (a retry elsewhere) unpacks the sealed copy.
    const second = path.join(root, "restore-2");
    await local.store.get(a.location, second, { key: SEAL.key, sha256: a.sha256 });
    expect(hits).toHaveLength(1);
    expect(await readFile(path.join(second, "images", "pages-1.img"), "utf8")).toBe("memory of a");
    // The sealed copy is still verified against the server's digest.
    await expect(local.store.get(a.location, path.join(root, "restore-3"), { key: SEAL.key, sha256: "0".repeat(64) })).rejects.toThrow(/does not match/);
  });

  it("keeps at most maxBytes, dropping the oldest, and nothing after close", async () => {
    const inner = createDirCheckpointStore(path.join(root, "store"));
    const local = createLocalCheckpoints(inner, { workDir, maxBytes: 250 });
    const [a, b, c] = [await stored(inner, "a", "A"), await stored(inner, "b", "B"), await stored(inner, "c", "C")];
    for (const s of [a, b, c]) expect(await local.keep(s.location, s.dir, 100)).toBe(true);
    expect(await readdir(path.join(workDir, "local-checkpoints"))).toHaveLength(2);
    // Too big to keep at all: the dump stays the caller's.
    const big = await stored(inner, "big", "BIG");
    expect(await local.keep(big.location, big.dir, 1000)).toBe(false);
    expect(await readdir(big.dir)).toEqual(expect.arrayContaining(["images", "resume.json"]));

    const hits: string[] = [];
    const reader = createLocalCheckpoints(inner, { workDir, maxBytes: 250, onHit: (location) => hits.push(location) });
    for (const s of [a, b, c]) await reader.store.get(s.location, path.join(root, `r-${s.location.length}-${hits.length}-${Math.random()}`), { key: SEAL.key, sha256: s.sha256 });
    // a was pushed out; b and c were there for another runner sharing the work dir.
    expect(hits).toEqual([b.location, c.location]);

    const d = await stored(inner, "d", "D");
    await local.keep(d.location, d.dir, 100);
    await local.close();
    expect(await readdir(path.join(workDir, "local-checkpoints"))).toEqual([]);
  });

  it("drops the kept dump with the checkpoint, and hands a dump back to its session", async () => {
    const inner = createDirCheckpointStore(path.join(root, "store"));
    const local = createLocalCheckpoints(inner, { workDir, maxBytes: 1 << 20 });
    const a = await stored(inner, "a", "A");
    await local.keep(a.location, a.dir, 10);
    await local.store.delete(a.location);
    expect(await readdir(path.join(workDir, "local-checkpoints"))).toEqual([]);
    expect(await inner.list()).toEqual([]);

    const b = await stored(inner, "b", "B");
    await local.keep(b.location, b.dir, 10);
    // The server refused the suspend: the session restores from its own dump again.
    expect(await local.takeBack(b.location, b.dir)).toBe(true);
    expect(await readFile(path.join(b.dir, "images", "pages-1.img"), "utf8")).toBe("B");
    expect(await local.takeBack(b.location, b.dir)).toBe(false);
  });
});
