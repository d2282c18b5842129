import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { afterAll } from "vitest";
import { createOpenStream, createSealStream, openSealedFiles } from "./sealed-stream.ts";

const MiB = 1 << 20;

/** Streams `data` through `transform` in pieces of `piece` bytes; returns what came out. */
async function through(transform: NodeJS.ReadWriteStream, data: Buffer, piece = 64 * 1024): Promise<Buffer> {
  const out: Buffer[] = [];
  const pieces = function* () {
    for (let at = 0; at < data.length; at += piece) yield data.subarray(at, at + piece);
  };
  await pipeline(Readable.from(pieces()), transform, new Writable({ write: (chunk: Buffer, _e, done) => (out.push(chunk), done()) }));
  return Buffer.concat(out);
}

const scratch = await mkdtemp(path.join(tmpdir(), "sealed-files-"));
afterAll(() => rm(scratch, { recursive: true, force: true }));
let written = 0;

/** `data` stored as files cut at `cuts` (a checkpoint in several blobs), opened by `openSealedFiles`: the plaintext. */
async function throughFiles(key: Buffer, data: Buffer, cuts: number[] = []): Promise<{ plain: Buffer }> {
  const bounds = [0, ...cuts.filter((c) => c > 0 && c < data.length), data.length];
  const files: string[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const file = path.join(scratch, `blob-${written++}`);
    await writeFile(file, data.subarray(bounds[i], bounds[i + 1]));
    files.push(file);
  }
  const out = path.join(scratch, `opened-${written++}`);
  await openSealedFiles(files, out, key);
  return { plain: await readFile(out) };
}

describe("sealed checkpoint stream", () => {
  const key = randomBytes(32);

  it("round-trips any size, in any piece size, and shows none of the plaintext", async () => {
    for (const size of [0, 1, MiB - 1, MiB, MiB + 1, 2 * MiB, Math.floor(2.5 * MiB)]) {
      const plain = Buffer.concat([Buffer.from("marker-0123456789"), randomBytes(Math.max(0, size - 17))]).subarray(0, size);
      const sealed = await through(createSealStream(key), plain);
      if (size >= 17) expect(sealed.includes("marker-0123456789")).toBe(false);
      expect((await through(createOpenStream(key), sealed, 7_777)).equals(plain), `size ${size}`).toBe(true);
      // The same bytes as files, whole and cut into blobs across record boundaries (inside a header, a body, a tag).
      for (const cuts of [[], [3, 8 + 2, 8 + 4 + 100, MiB + 8 + 4 + 10]]) {
        const opened = await throughFiles(key, sealed, cuts);
        expect(opened.plain.equals(plain), `size ${size} cut at ${cuts.join(",")}`).toBe(true);
      }
    }
  });

  it("refuses a wrong key, a flipped byte, a cut-off end, extra bytes and reordered records", async () => {
    const plain = randomBytes(Math.floor(2.5 * MiB));
    const sealed = await through(createSealStream(key), plain);
    const record = 4 + MiB + 16;
    const cases: Array<[string, Buffer, Buffer?]> = [
      ["wrong key", sealed, randomBytes(32)],
      ["flipped byte", Buffer.from(sealed).fill(sealed[100]! ^ 1, 100, 101)],
      ["last record dropped", sealed.subarray(0, 8 + 2 * record)],
      ["cut inside a record", sealed.subarray(0, sealed.length - 5)],
      ["extra bytes", Buffer.concat([sealed, Buffer.from("more")])],
      ["records swapped", Buffer.concat([sealed.subarray(0, 8), sealed.subarray(8 + record, 8 + 2 * record), sealed.subarray(8, 8 + record), sealed.subarray(8 + 2 * record)])],
      ["not sealed at all", plain],
    ];
    cases.push(["too short", sealed.subarray(0, 5)], ["a length no record holds", Buffer.concat([sealed.subarray(0, 8), Buffer.from([0, 0x20, 0, 0]), sealed.subarray(12)])]);
    const expected: Record<string, RegExp> = {
      "wrong key": /record 0 failed GCM authentication/,
      "flipped byte": /record 0 failed GCM authentication/,
      "last record dropped": /its last record is missing/,
      "cut inside a record": /cut off inside a record/,
      "extra bytes": /bytes after the checkpoint's last record/,
      "records swapped": /record 0 failed GCM authentication/,
      "not sealed at all": /not a sealed Stasis checkpoint \(bad magic\)/,
      "too short": /not a sealed Stasis checkpoint \(too short\)/,
      "a length no record holds": /record 0 claims 2097152 bytes, more than a record holds/,
    };
    for (const [what, bytes, otherKey] of cases) {
      await expect(through(createOpenStream(otherKey ?? key), bytes), what).rejects.toThrow(expected[what]);
      await expect(throughFiles(otherKey ?? key, bytes, [8 + 4 + 1000]), `${what}, from files`).rejects.toThrow(expected[what]);
    }
  });
});
