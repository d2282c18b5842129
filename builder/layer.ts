import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { digestHex, sha256 } from "./digest.ts";
import { MEDIA_TYPE_LAYER_GZIP } from "./oci-types.ts";
import { writeTar, type TarEntry } from "./tar-writer.ts";

/** A blob on local disk, addressed by its digest. */
export interface BlobFile {
  digest: string;
  size: number;
  mediaType: string;
  path: string;
}

export interface LayerBlob extends BlobFile {
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
  /**
   * A layer of a base image that stays in its registry until a store needs its bytes: a push to
   * the same registry mounts it from `repository` (nothing uploaded), anything else calls `fetch`
   * first, which downloads it (digest-checked) to `path`.
   */
  remote?: { host: string; repository: string; fetch(): Promise<void> };
}

export function blobPath(blobsDir: string, digest: string): string {
  return join(blobsDir, "sha256", digestHex(digest));
}

function hashing(hash: ReturnType<typeof createHash>, count?: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      if (count) count.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

/**
 * Writes one gzip'd tar layer into `blobsDir/sha256/<hex>`. zlib's gzip header carries no name
 * and a zero mtime, so equal entries give an equal digest.
 *
 * Level 1, as go-containerregistry (crane, ko) writes layers: on Stasis's own image (Node, CRIU and
 * node_modules, 340 MB of tar) it compresses in 5.7 s of CPU against 12.1 s at level 6, for 11 % more
 * bytes (121 against 109 MB) — a build waits on compression, a pull from a registry nearby hardly
 * notices the bytes.
 *
 * zlib's output buffer is a MiB (its default, 16 KiB, sent the compression back to the event loop
 * every 16 KiB it wrote: 26 s against 14 s for node_modules' 530 MB of tar, output identical).
 */
export async function writeLayer(entries: TarEntry[], options: { blobsDir: string; mtime: number }): Promise<LayerBlob> {
  await mkdir(join(options.blobsDir, "sha256"), { recursive: true });
  const tmp = join(options.blobsDir, `.layer-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const diffHash = createHash("sha256");
  const blobHash = createHash("sha256");
  const count = { bytes: 0 };
  try {
    await pipeline(
      Readable.from(writeTar(entries, options.mtime)),
      hashing(diffHash),
      createGzip({ level: 1, chunkSize: 1 << 20 }),
      hashing(blobHash, count),
      createWriteStream(tmp),
    );
    const digest = "sha256:" + blobHash.digest("hex");
    const path = blobPath(options.blobsDir, digest);
    await rename(tmp, path);
    return { digest, diffId: "sha256:" + diffHash.digest("hex"), size: count.bytes, mediaType: MEDIA_TYPE_LAYER_GZIP, path };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Stores a small JSON/bytes blob (config, manifest) and returns its descriptor. */
export async function writeBlob(data: Buffer, mediaType: string, blobsDir: string): Promise<BlobFile> {
  const digest = sha256(data);
  const path = blobPath(blobsDir, digest);
  await mkdir(join(blobsDir, "sha256"), { recursive: true });
  const existing = await stat(path).catch(() => null);
  if (!existing || existing.size !== data.length) {
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, data);
    await rename(tmp, path);
  }
  return { digest, size: data.length, mediaType, path };
}
