import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { createOpenStream, createSealStream } from "./sealed-stream.ts";

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

describe("sealed checkpoint stream", () => {
  const key = randomBytes(32);

  it("round-trips any size, in any piece size, and shows none of the plaintext", async () => {
    for (const size of [0, 1, MiB - 1, MiB, MiB + 1, 2 * MiB, Math.floor(2.5 * MiB)]) {
      const plain = Buffer.concat([Buffer.from("marker-0123456789"), randomBytes(Math.max(0, size - 17))]).subarray(0, size);
      const sealed = await through(createSealStream(key), plain);
      if (size >= 17) expect(sealed.includes("marker-0123456789")).toBe(false);
      expect((await through(createOpenStream(key), sealed, 7_777)).equals(plain), `size ${size}`).toBe(true);
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
    for (const [what, bytes, otherKey] of cases) {
      await expect(through(createOpenStream(otherKey ?? key), bytes), what).rejects.toThrow(/GCM authentication|cut off|after the checkpoint's last record|not a sealed|more than a record holds/);
    }
  });
});
