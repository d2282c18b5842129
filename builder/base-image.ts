import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { pipeline } from "node:stream/promises";
import { BuilderError } from "./errors.ts";
import { blobPath, type LayerBlob } from "./layer.ts";
import { registryAuthFromEnv } from "./open-image-store.ts";
import { MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, OciImageConfig, OciIndex, OciManifest, parseJson } from "./oci-types.ts";
import { createRegistryClient } from "./registry-client.ts";
import { parseRegistryRef } from "./registry-store.ts";
import { readAll } from "./unpack.ts";
import { sha256 } from "./digest.ts";

export interface BaseImage {
  layers: LayerBlob[];
  env: string[];
  labels: Record<string, string>;
  /** The manifest digest the reference resolved to (the one chosen for linux/amd64 from an index). */
  digest: string;
}

const ACCEPT = [MEDIA_TYPE_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_LIST].join(", ");
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost)(:\d+)?$/;

/**
 * A base image's layers to build on top of, verified and cached by digest in `blobsDir`. `lazy`
 * reads only its manifest and config: each layer stays in the registry (`LayerBlob.remote`) until a
 * store needs its bytes, so a push to the same registry mounts it and uploads nothing.
 */
export async function pullBaseImage(ref: string, blobsDir: string, onProgress?: (m: string) => void, options: { lazy?: boolean } = {}): Promise<BaseImage> {
  const { host, repository, digest, tag } = parseRegistryRef(ref);
  const scheme = LOOPBACK.test(host) || process.env.STASIS_REGISTRY_INSECURE === "1" ? "http" : "https";
  const client = createRegistryClient({ url: `${scheme}://${host}`, auth: registryAuthFromEnv(process.env, host, true) });
  const repo = `/v2/${repository}`;
  const getManifest = async (reference: string) => {
    const res = await client.expect(await client.request({ method: "GET", path: `${repo}/manifests/${reference}`, headers: { accept: ACCEPT } }), [200], `base image ${ref}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (reference.startsWith("sha256:") && sha256(bytes) !== reference) throw new BuilderError("DIGEST_MISMATCH", `base image manifest ${reference} does not match its digest`);
    return bytes;
  };
  let bytes = await getManifest(digest ?? tag!);
  const raw = JSON.parse(bytes.toString()) as { manifests?: unknown };
  if (Array.isArray(raw.manifests)) {
    const index = parseJson(OciIndex, bytes, `base image index ${ref}`);
    const chosen = index.manifests.find((m) => m.platform?.os === "linux" && m.platform.architecture === "amd64");
    if (!chosen) throw new BuilderError("NOT_FOUND", `base image ${ref} has no linux/amd64 manifest`);
    bytes = await getManifest(chosen.digest);
  }
  const manifest = parseJson(OciManifest, bytes, `base image manifest ${ref}`);
  const getBlob = async (d: string) => client.expect(await client.request({ method: "GET", path: `${repo}/blobs/${d}` }), [200], `base image blob ${d}`);
  const configBytes = await readAll(Readable.fromWeb((await getBlob(manifest.config.digest)).body as unknown as WebReadableStream));
  if (sha256(configBytes) !== manifest.config.digest) throw new BuilderError("DIGEST_MISMATCH", `base image config ${manifest.config.digest} does not match its digest`);
  const config = parseJson(OciImageConfig, configBytes, `base image config ${ref}`);

  await mkdir(join(blobsDir, "sha256"), { recursive: true });
  const download = async (layer: { digest: string; size: number }, what: string) => {
    const path = blobPath(blobsDir, layer.digest);
    if ((await stat(path).catch(() => null))?.size === layer.size) return;
    onProgress?.(`pulling ${what} (${layer.size} bytes)`);
    const hash = createHash("sha256");
    const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const res = await getBlob(layer.digest);
    await pipeline(
      Readable.fromWeb(res.body as unknown as WebReadableStream),
      new Transform({ transform: (c: Buffer, _e, done) => (hash.update(c), done(null, c)) }),
      createWriteStream(tmp),
    );
    if ("sha256:" + hash.digest("hex") !== layer.digest) {
      await rm(tmp, { force: true });
      throw new BuilderError("DIGEST_MISMATCH", `base image layer ${layer.digest} does not match its digest`);
    }
    await rename(tmp, path);
  };
  const layers: LayerBlob[] = [];
  for (const [i, layer] of manifest.layers.entries()) {
    const what = `base layer ${i + 1}/${manifest.layers.length}`;
    const diffId = config.rootfs.diff_ids[i];
    if (!diffId) throw new BuilderError("REGISTRY_ERROR", `base image ${ref}: config lists fewer diff_ids than layers`);
    const blob: LayerBlob = { digest: layer.digest, size: layer.size, mediaType: layer.mediaType, path: blobPath(blobsDir, layer.digest), diffId };
    if (options.lazy) {
      let fetching: Promise<void> | null = null;
      blob.remote = { host, repository, fetch: () => (fetching ??= download(layer, what)) };
    } else await download(layer, what);
    layers.push(blob);
  }
  return { layers, env: config.config?.Env ?? [], labels: config.config?.Labels ?? {}, digest: sha256(bytes) };
}
