import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createDirCheckpointStore } from "./checkpoint-store/index.ts";
import { createLocalCheckpoints, removeOrphanedDumps } from "./local-checkpoints.ts";

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

  it("hands a kept dump over once; after that only the sealed copy is there", async () => {
    const inner = createDirCheckpointStore(path.join(root, "store"));
    const local = createLocalCheckpoints(inner, { workDir, maxBytes: 1 << 20 });
    const a = await stored(inner, "a", "memory of a");
    expect(await local.keep(a.location, a.dir, 100)).toBe(true);

    // Into an existing empty restore dir, as start.ts makes it.
    const first = path.join(root, "restore-1");
    await mkdir(first);
    expect(await local.take(a.location, first)).toBe(true);
    expect(await readFile(path.join(first, "images", "pages-1.img"), "utf8")).toBe("memory of a");
    expect(JSON.parse(await readFile(path.join(first, "resume.json"), "utf8"))).toEqual({ callId: 1 });

    // Taken once: the next resume of the same checkpoint (a retry) unpacks the sealed copy.
    const second = path.join(root, "restore-2");
    expect(await local.take(a.location, second)).toBe(false);
    await local.store.get(a.location, second, { key: SEAL.key, sha256: a.sha256 });
    expect(await readFile(path.join(second, "images", "pages-1.img"), "utf8")).toBe("memory of a");
    // The sealed copy is still verified against the server's digest.
    await expect(local.store.get(a.location, path.join(root, "restore-3"), { key: SEAL.key, sha256: "0".repeat(64) })).rejects.toThrow(/does not match/);
  });

  it("hands a kept dump over into a dir that already holds something, entry by entry", async () => {
    const inner = createDirCheckpointStore(path.join(root, "store-full"));
    const local = createLocalCheckpoints(inner, { workDir, maxBytes: 1 << 20 });
    const a = await stored(inner, "full", "memory of full");
    expect(await local.keep(a.location, a.dir, 100)).toBe(true);
    const dest = path.join(root, "restore-full");
    await mkdir(dest);
    await writeFile(path.join(dest, "already-here"), "x");
    expect(await local.take(a.location, dest)).toBe(true);
    expect(await readFile(path.join(dest, "images", "pages-1.img"), "utf8")).toBe("memory of full");
    expect(await readFile(path.join(dest, "already-here"), "utf8")).toBe("x");
    expect(await local.take(a.location, path.join(root, "restore-full-2"))).toBe(false);
  });

  it("keeps at most maxBytes, dropping the oldest, and nothing after close", async () => {
    const inner = createDirCheckpointStore(path.join(root, "store"));
    const local = createLocalCheckpoints(inner, { workDir, maxBytes: 250 });
    const [a, b, c] = [await stored(inner, "a", "A"), await stored(inner, "b", "B"), await stored(inner, "c", "C")];
    for (const s of [a, b, c]) expect(await local.keep(s.location, s.dir, 100)).toBe(true);
    // Two dumps, each with the file naming its keeper.
    expect(await readdir(path.join(workDir, "local-checkpoints"))).toHaveLength(4);
    // Too big to keep at all: the dump stays the caller's.
    const big = await stored(inner, "big", "BIG");
    expect(await local.keep(big.location, big.dir, 1000)).toBe(false);
    expect(await readdir(big.dir)).toEqual(expect.arrayContaining(["images", "resume.json"]));

    // a was pushed out; b and c are there for another runner sharing the work dir.
    const reader = createLocalCheckpoints(inner, { workDir, maxBytes: 250 });
    const taken = [];
    for (const [i, s] of [a, b, c].entries()) taken.push(await reader.take(s.location, path.join(root, `r-${i}`)));
    expect(taken).toEqual([false, true, true]);
    expect(await readFile(path.join(root, "r-2", "images", "pages-1.img"), "utf8")).toBe("C");

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
    // Canceled while suspended (the poll's deleteCheckpoints), or replaced by the run's next checkpoint.
    await local.store.delete(a.location);
    expect(await readdir(path.join(workDir, "local-checkpoints"))).toEqual([]);
    expect(await inner.list()).toEqual([]);

    const b = await stored(inner, "b", "B");
    await local.keep(b.location, b.dir, 10);
    // The server refused the suspend: the session restores from its own dump again.
    expect(await local.take(b.location, b.dir)).toBe(true);
    expect(await readFile(path.join(b.dir, "images", "pages-1.img"), "utf8")).toBe("B");
    expect(await local.take(b.location, b.dir)).toBe(false);
  });

  it("a dump kept by a runner killed with SIGKILL is removed when a runner starts on its work dir; a live runner's stays", async () => {
    const inner = createDirCheckpointStore(path.join(root, "store"));
    const a = await stored(inner, "a", "kept by a runner that gets killed");
    const b = await stored(inner, "b", "kept by this one");
    // Another runner on the same work dir, in its own process: it keeps `a` and waits.
    const script = `const { createDirCheckpointStore } = await import(${JSON.stringify(path.resolve("runner/checkpoint-store/index.ts"))});
      const { createLocalCheckpoints } = await import(${JSON.stringify(path.resolve("runner/local-checkpoints.ts"))});
      const local = createLocalCheckpoints(createDirCheckpointStore(${JSON.stringify(path.join(root, "store"))}), { workDir: ${JSON.stringify(workDir)}, maxBytes: 1 << 20 });
      console.log(await local.keep(${JSON.stringify(a.location)}, ${JSON.stringify(a.dir)}, 100));
      setInterval(() => {}, 1000);`;
    const other = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise((resolve) => other.once("exit", resolve));
    try {
      const said = await new Promise<string>((resolve) => other.stdout!.once("data", (chunk: Buffer) => resolve(chunk.toString().trim())));
      expect(said).toBe("true");
      const local = createLocalCheckpoints(inner, { workDir, maxBytes: 1 << 20 });
      expect(await local.keep(b.location, b.dir, 100)).toBe(true);
      // What an older runner, or a take cut short by a kill, left: no keeper named, or a taker gone.
      const unnamed = path.join(workDir, "local-checkpoints", "f".repeat(64));
      const halfTaken = path.join(workDir, "local-checkpoints", `${"e".repeat(64)}.taken-999999999-x`);
      await mkdir(path.join(unnamed, "images"), { recursive: true });
      await mkdir(path.join(halfTaken, "images"), { recursive: true });

      // Both keepers alive: only the leftovers go.
      expect(await removeOrphanedDumps(workDir)).toBe(1);
      expect(await readdir(path.join(workDir, "local-checkpoints"))).toHaveLength(4);

      other.kill("SIGKILL");
      await exited;
      // The killed runner's dump goes; this runner's stays, and is still handed over.
      expect(await removeOrphanedDumps(workDir)).toBe(1);
      expect(await readdir(path.join(workDir, "local-checkpoints"))).toHaveLength(2);
      expect(await local.take(a.location, path.join(root, "restore-a"))).toBe(false);
      expect(await local.take(b.location, path.join(root, "restore-b"))).toBe(true);
      expect(await readFile(path.join(root, "restore-b", "images", "pages-1.img"), "utf8")).toBe("kept by this one");
    } finally {
      other.kill("SIGKILL");
    }
  });
});
