import { open as openFile } from "node:fs/promises";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { DIGEST_RE } from "./digest.ts";
import { BuilderError } from "./errors.ts";
import { assertTag, type FetchedImage, type ImageStore, type ProgressFn, type PushResult } from "./image-store.ts";
import type { BlobFile, LayerBlob } from "./layer.ts";
import type { BuiltImage } from "./oci-image.ts";
import { MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST } from "./oci-types.ts";
import { hasBlob as hasRegistryBlob, uploadBlob as uploadRegistryBlob, type UploadableBlob } from "./registry-blobs.ts";
import { createRegistryClient, type RegistryAuth, type RegistryClient } from "./registry-client.ts";
import { fetchImage, type BlobSource } from "./unpack.ts";

export interface RegistryImageStoreOptions {
  url: string;
  repository: string;
  auth?: RegistryAuth;
  /** Blobs up to this size go up in one PUT; larger ones in PATCH chunks (default 8 MiB). */
  monolithicMaxBytes?: number;
  chunkBytes?: number;
  attempts?: number;
}

const MANIFEST_ACCEPT = [MEDIA_TYPE_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_LIST].join(", ");
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** `host[:port]/repo[/more]@sha256:…` or `…:tag` → parts. */
export function parseRegistryRef(ref: string): { host: string; repository: string; digest?: string; tag?: string } {
  const at = ref.lastIndexOf("@");
  let name = ref;
  let digest: string | undefined;
  let tag: string | undefined;
  if (at > 0) {
    digest = ref.slice(at + 1);
    name = ref.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw new BuilderError("BAD_REF", `bad digest in image reference ${ref}`);
  }
  const slash = name.indexOf("/");
  if (slash <= 0) throw new BuilderError("BAD_REF", `image reference needs a registry host: ${ref}`);
  const host = name.slice(0, slash);
  let repository = name.slice(slash + 1);
  const colon = repository.lastIndexOf(":");
  if (colon > 0) {
    tag = repository.slice(colon + 1);
    repository = repository.slice(0, colon);
  }
  if (!REPO_RE.test(repository)) throw new BuilderError("BAD_REF", `bad repository name in image reference ${ref}`);
  if (!digest && !tag) throw new BuilderError("BAD_REF", `image reference needs @sha256:<digest> or :<tag>: ${ref}`);
  return { host, repository, digest, tag };
}

async function readRange(path: string, start: number, length: number): Promise<Buffer> {
  const handle = await openFile(path, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, start);
    if (bytesRead !== length) throw new Error(`${path} is shorter than expected`);
    return buf;
  } finally {
    await handle.close();
  }
}

/** An OCI registry over the Distribution API (CNCF distribution, GHCR, ECR, Harbor). */
export function createRegistryImageStore(o: RegistryImageStoreOptions): ImageStore {
  if (!REPO_RE.test(o.repository)) throw new BuilderError("BAD_REF", `bad repository name ${JSON.stringify(o.repository)}`);
  const client: RegistryClient = createRegistryClient({ url: o.url, auth: o.auth, attempts: o.attempts });
  const repo = `/v2/${o.repository}`;
  const monolithicMax = o.monolithicMaxBytes ?? 8 * 1024 * 1024;
  const chunkBytes = o.chunkBytes ?? 8 * 1024 * 1024;

  async function resolveTag(tag: string): Promise<string | null> {
    const res = await client.request({ method: "HEAD", path: `${repo}/manifests/${tag}`, headers: { accept: MANIFEST_ACCEPT } });
    if (res.status === 404) return null;
    await client.expect(res, [200], `HEAD manifest ${tag}`);
    return res.headers.get("docker-content-digest");
  }

  const hasBlob = (digest: string) => hasRegistryBlob(client, o.repository, digest);

  /**
   * Cross-repository mount (Distribution API): 201 = the blob is now in this repository too. A
   * registry that cannot mount answers 202 with an upload session, which is left to expire.
   */
  async function mountBlob(digest: string, from: string): Promise<boolean> {
    const res = await client.request({ method: "POST", path: `${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` });
    await res.arrayBuffer().catch(() => {});
    return res.status === 201;
  }

  async function uploadBlob(blob: BlobFile, onProgress?: ProgressFn): Promise<void> {
    const file: UploadableBlob = { digest: blob.digest, size: blob.size, read: (start, length) => readRange(blob.path, start, length) };
    await uploadRegistryBlob(client, o.repository, file, { monolithicMaxBytes: monolithicMax, chunkBytes, onProgress });
  }

  async function push(image: BuiltImage, tag: string, onProgress?: ProgressFn): Promise<PushResult> {
    assertTag(tag);
    const existing = await resolveTag(tag);
    if (existing && existing !== image.digest) {
      throw new BuilderError("TAG_EXISTS", `tag ${tag} of ${client.host}/${o.repository} already names ${existing}; a version's tag is never overwritten`);
    }
    let bytesUploaded = 0;
    let blobsSkipped = 0;
    for (const blob of [...image.layers, image.configBlob]) {
      if (await hasBlob(blob.digest)) {
        blobsSkipped++;
        onProgress?.(`skipping ${blob.digest.slice(7, 19)}: the registry has it`);
        continue;
      }
      const remote = (blob as Partial<LayerBlob>).remote;
      if (remote && remote.host === client.host && (await mountBlob(blob.digest, remote.repository))) {
        blobsSkipped++;
        onProgress?.(`mounted ${blob.digest.slice(7, 19)} from ${remote.repository}: nothing uploaded`);
        continue;
      }
      if (remote) await remote.fetch();
      onProgress?.(`uploading ${blob.digest.slice(7, 19)} (${blob.size} bytes)`);
      await uploadBlob(blob, onProgress);
      bytesUploaded += blob.size;
    }
    if (!existing) {
      // Distribution has no conditional PUT: two pushers racing on one new tag is left to version allocation upstream.
      const res = await client.request({ method: "PUT", path: `${repo}/manifests/${tag}`, headers: { "content-type": MEDIA_TYPE_MANIFEST }, body: image.manifestBytes });
      await client.expect(res, [201], `PUT manifest ${tag}`);
    }
    return { ref: `${client.host}/${o.repository}@${image.digest}`, digest: image.digest, bytesUploaded, blobsSkipped };
  }

  const source: BlobSource = {
    name: `${client.host}/${o.repository}`,
    async open(digest, kind) {
      const path = kind === "manifest" ? `${repo}/manifests/${digest}` : `${repo}/blobs/${digest}`;
      const res = await client.request({ method: "GET", path, headers: kind === "manifest" ? { accept: MANIFEST_ACCEPT } : {} });
      if (res.status === 404) throw new BuilderError("NOT_FOUND", `${kind} ${digest} is not in ${client.host}/${o.repository}`);
      await client.expect(res, [200], `GET ${kind} ${digest}`);
      return Readable.fromWeb(res.body as unknown as WebReadableStream);
    },
  };

  async function fetch(ref: string, destDir: string, onProgress?: ProgressFn): Promise<FetchedImage> {
    const parsed = parseRegistryRef(ref);
    if (parsed.repository !== o.repository) throw new BuilderError("BAD_REF", `${ref} is not in repository ${o.repository}`);
    const digest = parsed.digest ?? (await resolveTag(parsed.tag!));
    if (!digest) throw new BuilderError("NOT_FOUND", `no tag ${parsed.tag} in ${client.host}/${o.repository}`);
    return fetchImage(source, digest, destDir, onProgress);
  }

  return { kind: "registry", push, fetch, resolveTag };
}
