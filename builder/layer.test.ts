// A layer as GNU tar reads it back: a tree of small files, a file bigger than the writer reads at
// once, and a file that changes size while it is archived (an error naming it, no blob left).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeLayer } from "./layer.ts";
import type { TarEntry } from "./tar-writer.ts";

const run = promisify(execFile);
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "stasis-layer-"));
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe("writeLayer", () => {
  it("writes small files, a big one and long names that tar extracts byte for byte, with one digest each time", async () => {
    const src = join(work, "src");
    await mkdir(src);
    const entries: TarEntry[] = [];
    const contents = new Map<string, Buffer>();
    for (let i = 0; i < 400; i++) {
      const data = randomBytes(i * 7);
      await writeFile(join(src, `f${i}`), data);
      const path = `app/node_modules/pkg-${i % 13}/${"deep/".repeat(i % 30)}f${i}.js`;
      entries.push({ type: "file", path, source: join(src, `f${i}`), size: data.length, mode: 0o644 });
      contents.set(path, data);
    }
    const big = randomBytes(3 * 1024 * 1024 + 123);
    await writeFile(join(src, "big"), big);
    entries.push({ type: "file", path: "usr/local/bin/node", source: join(src, "big"), size: big.length, mode: 0o755 });
    contents.set("usr/local/bin/node", big);
    entries.push({ type: "file", path: "etc/hosts", data: Buffer.from("127.0.0.1 localhost\n") });
    contents.set("etc/hosts", Buffer.from("127.0.0.1 localhost\n"));
    entries.push({ type: "symlink", path: "bin", target: "usr/bin" });

    const first = await writeLayer(entries, { blobsDir: join(work, "blobs-1"), mtime: 1_700_000_000 });
    const second = await writeLayer([...entries].reverse(), { blobsDir: join(work, "blobs-2"), mtime: 1_700_000_000 });
    expect(second.digest).toBe(first.digest);
    expect(second.diffId).toBe(first.diffId);

    const out = join(work, "out");
    await mkdir(out);
    await run("tar", ["-xzf", first.path, "-C", out]);
    for (const [path, data] of contents) expect((await readFile(join(out, path))).equals(data), path).toBe(true);
    const listing = (await run("tar", ["-tvzf", first.path], { maxBuffer: 16 << 20 })).stdout;
    expect(listing).toMatch(/^lrwxrwxrwx 0\/0 .* bin -> usr\/bin$/m);
    expect(listing).toMatch(/^-rwxr-xr-x 0\/0 +3145851 2023-11-14 \d\d:\d\d usr\/local\/bin\/node$/m);
  });

  it("refuses a file whose size changed since it was listed, naming it, and leaves no blob", async () => {
    const file = join(work, "grows");
    await writeFile(file, "12345");
    const blobsDir = join(work, "blobs-grows");
    await expect(writeLayer([{ type: "file", path: "app/grows", source: file, size: 3 }], { blobsDir, mtime: 0 })).rejects.toThrow(`${file} changed size while it was being archived`);
    expect(await readdir(blobsDir)).toEqual(["sha256"]);
    expect(await readdir(join(blobsDir, "sha256"))).toEqual([]);
  });
});
