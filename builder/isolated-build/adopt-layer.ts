import { createHash } from "node:crypto";
import { constants, createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, realpath, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PassThrough, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { BuilderError } from "../errors.ts";
import { blobPath, type LayerBlob } from "../layer.ts";

export interface ClaimedLayer {
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
}

const refused = (message: string) => new BuilderError("BUILD_SANDBOX_FAILED", `a layer the build wrote is refused: ${message}`);

function hashing(hash: ReturnType<typeof createHash>, count: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      count.bytes += chunk.length;
      done(null, chunk);
    },
  });
}

/**
 * Takes one layer the sandboxed build says it wrote into `childBlobsDir` (a real path, no symlink
 * in it up to the dir the parent created for the build) and copies it into the
 * parent's `blobsDir`, believing nothing: the file must be a regular file reached without a
 * symlink (O_NOFOLLOW, and its directory's real path is the expected one), and its sha256, size and
 * uncompressed sha256 (diff id) are recomputed here.
 */
export async function adoptLayer(claimed: ClaimedLayer, childBlobsDir: string, blobsDir: string): Promise<LayerBlob> {
  const source = blobPath(childBlobsDir, claimed.digest);
  // Lexical: childBlobsDir is a real path the parent made; the build may have swapped anything below it for a symlink.
  const expectedDir = join(childBlobsDir, "sha256");
  if ((await realpath(dirname(source)).catch(() => null)) !== expectedDir) throw refused(`${claimed.digest} is not inside the build's blobs dir`);
  const handle = await open(source, constants.O_RDONLY | constants.O_NOFOLLOW).catch((error: Error) => {
    throw refused(`${claimed.digest}: ${error.message}`);
  });
  await mkdir(join(blobsDir, "sha256"), { recursive: true });
  const target = blobPath(blobsDir, claimed.digest);
  const tmp = `${target}.adopt-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    if (!(await handle.stat()).isFile()) throw refused(`${claimed.digest} is not a regular file`);
    const blobHash = createHash("sha256");
    const diffHash = createHash("sha256");
    const count = { bytes: 0 };
    await pipeline(createReadStream("", { fd: handle, autoClose: false }), hashing(blobHash, count), createWriteStream(tmp));
    // The diff id is recomputed from the copy, which the build can no longer touch.
    await pipeline(createReadStream(tmp), createGunzip(), hashing(diffHash, { bytes: 0 }), new PassThrough().resume()).catch((error: Error) => {
      throw refused(`${claimed.digest} is not a gzip'd tar: ${error.message}`);
    });
    const digest = "sha256:" + blobHash.digest("hex");
    const diffId = "sha256:" + diffHash.digest("hex");
    if (digest !== claimed.digest || count.bytes !== claimed.size || diffId !== claimed.diffId) throw refused(`${claimed.digest} does not match what the build reported`);
    await rename(tmp, target);
    return { digest, diffId, size: count.bytes, mediaType: claimed.mediaType, path: target };
  } finally {
    await handle.close();
    await rm(tmp, { force: true });
  }
}
