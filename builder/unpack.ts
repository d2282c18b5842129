import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BuildManifest } from "../schemas/index.ts";
import { digestHex, sha256 } from "./digest.ts";
import { BuilderError } from "./errors.ts";
import type { FetchedImage, ProgressFn } from "./image-store.ts";
import { OciImageConfig, OciIndex, OciManifest, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_INDEX, parseJson, type Descriptor } from "./oci-types.ts";
import { unpackLayerFile } from "./safe-layer.ts";

/** Where a fetch reads blobs from: a layout dir or a registry. */
export interface BlobSource {
  /** For messages: `oci-layout:/dir` or `127.0.0.1:5000/repo`. */
  name: string;
  /** Manifests and blobs live apart in a registry; a layout dir keeps both as blobs. */
  open(digest: string, kind: "manifest" | "blob"): Promise<Readable>;
}

const inFlight = new Map<string, Promise<FetchedImage>>();

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function readVerified(source: BlobSource, digest: string, kind: "manifest" | "blob" = "blob"): Promise<Buffer> {
  const bytes = await readAll(await source.open(digest, kind));
  if (sha256(bytes) !== digest) throw mismatch(source, digest);
  return bytes;
}

function mismatch(source: BlobSource, digest: string): BuilderError {
  return new BuilderError("DIGEST_MISMATCH", `blob ${digest} from ${source.name} does not match its digest (tampered or corrupt)`);
}

function pickPlatform(index: OciIndex, source: BlobSource): Descriptor {
  const found = index.manifests.find((m) => !m.platform || (m.platform.os === "linux" && m.platform.architecture === "amd64"));
  if (!found) throw new BuilderError("NOT_FOUND", `${source.name}: the image index has no linux/amd64 manifest`);
  return found;
}

/**
 * Downloads the layer into `scratch` while hashing it, refuses it unless it matches its digest,
 * and only then unpacks it into `root` through the checks of safe-layer.ts.
 */
async function extractLayer(source: BlobSource, layer: Descriptor, root: string, scratch: string): Promise<void> {
  const hash = createHash("sha256");
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  const file = join(scratch, `layer-${digestHex(layer.digest).slice(0, 16)}`);
  try {
    await pipeline(await source.open(layer.digest, "blob"), hasher, createWriteStream(file));
    if ("sha256:" + hash.digest("hex") !== layer.digest) throw mismatch(source, layer.digest);
    await unpackLayerFile(file, root, `${layer.digest.slice(0, 19)} from ${source.name}`);
  } catch (err) {
    if (err instanceof BuilderError) throw err;
    throw new BuilderError("DIGEST_MISMATCH", `blob ${layer.digest} from ${source.name} is corrupt or tampered: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(file, { force: true });
  }
}

async function readCached(dir: string): Promise<FetchedImage | null> {
  const raw = await readFile(join(dir, "image.json"), "utf8").catch(() => null);
  return raw ? (JSON.parse(raw) as FetchedImage) : null;
}

async function fetchOnce(source: BlobSource, digest: string, destDir: string, onProgress?: ProgressFn): Promise<FetchedImage> {
  const finalDir = join(destDir, digestHex(digest));
  const cached = await readCached(finalDir);
  if (cached) return cached;

  let manifestBytes = await readVerified(source, digest, "manifest");
  const raw = JSON.parse(manifestBytes.toString()) as { mediaType?: string; manifests?: unknown };
  if (raw.mediaType === MEDIA_TYPE_INDEX || raw.mediaType === MEDIA_TYPE_DOCKER_LIST || Array.isArray(raw.manifests)) {
    const chosen = pickPlatform(parseJson(OciIndex, manifestBytes, `index ${digest}`), source);
    manifestBytes = await readVerified(source, chosen.digest, "manifest");
  }
  const manifest = parseJson(OciManifest, manifestBytes, `manifest ${digest}`);
  const config = parseJson(OciImageConfig, await readVerified(source, manifest.config.digest), `config ${manifest.config.digest}`);

  await mkdir(destDir, { recursive: true });
  const tmpDir = join(destDir, `.tmp-${digestHex(digest).slice(0, 12)}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const rootfsTmp = join(tmpDir, "rootfs");
  await mkdir(rootfsTmp, { recursive: true });
  try {
    for (const [i, layer] of manifest.layers.entries()) {
      onProgress?.(`unpacking layer ${i + 1}/${manifest.layers.length} ${layer.digest.slice(7, 19)} (${layer.size} bytes)`);
      await extractLayer(source, layer, rootfsTmp, tmpDir);
    }
    const appDir = join(finalDir, "rootfs", "app");
    const manifestFile = await readFile(join(rootfsTmp, "app", "stasis-manifest.json"), "utf8").catch(() => null);
    const buildManifest = manifestFile ? parseJson(BuildManifest, manifestFile, `${digest} /app/stasis-manifest.json`) : null;
    const fetched: FetchedImage = { digest, manifest, config, rootfsDir: join(finalDir, "rootfs"), appDir, buildManifest };
    await writeFile(join(tmpDir, "image.json"), JSON.stringify(fetched));
    try {
      await rename(tmpDir, finalDir);
    } catch (err) {
      // Another process finished the same digest first: its copy is as good as ours.
      if (!(await stat(join(finalDir, "image.json")).catch(() => null))) throw err;
    }
    return fetched;
  } finally {
    // An aborted extraction may still be closing files: rm retries ENOTEMPTY.
    await rm(tmpDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  }
}

/** Fetches, verifies and unpacks an image by digest into `destDir/<hex>/rootfs`, once per digest. */
export function fetchImage(source: BlobSource, digest: string, destDir: string, onProgress?: ProgressFn): Promise<FetchedImage> {
  const key = `${destDir}\0${digest}`;
  const running = inFlight.get(key);
  if (running) return running;
  const promise = fetchOnce(source, digest, destDir, onProgress).finally(() => inFlight.delete(key));
  inFlight.set(key, promise);
  return promise;
}
