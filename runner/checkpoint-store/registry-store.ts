import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Readable, Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { z } from "zod";
import { createRegistryClient, hasBlob, uploadBlob, type RegistryAuth, type RegistryClient } from "../../builder/index.ts";
import { CheckpointIntegrityError, CheckpointStoreError, checkKey } from "./errors.ts";
import { packDirInto, unpackFiles } from "./tar-zstd.ts";
import type { CheckpointStore, StoredCheckpoint } from "./types.ts";

export const CHECKPOINT_ARTIFACT_TYPE = "application/vnd.stasis.checkpoint.v1";
export const CHECKPOINT_LAYER_TYPE = "application/vnd.stasis.checkpoint.sealed.v1";
const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
const EMPTY_CONFIG = { mediaType: "application/vnd.oci.empty.v1+json", digest: `sha256:${createHash("sha256").update("{}").digest("hex")}`, size: 2 };
const KEY_ANNOTATION = "dev.stasis.checkpoint.key";
const CREATED_ANNOTATION = "org.opencontainers.image.created";
const PREFIX = "registry:";
const REPO_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

const Descriptor = z.object({ mediaType: z.string(), digest: z.string().regex(/^sha256:[0-9a-f]{64}$/), size: z.number().int().nonnegative() });
const CheckpointManifest = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.literal(MANIFEST_TYPE).optional(),
  artifactType: z.literal(CHECKPOINT_ARTIFACT_TYPE).optional(),
  config: Descriptor,
  layers: z.array(Descriptor.extend({ mediaType: z.literal(CHECKPOINT_LAYER_TYPE) })).min(1),
  annotations: z.record(z.string(), z.string()).optional(),
});
type CheckpointManifest = z.infer<typeof CheckpointManifest>;

export interface RegistryCheckpointStoreOptions {
  /** The registry's base URL (`https://ghcr.io`, `http://127.0.0.1:5000`). */
  url: string;
  /** The repository checkpoints go to (`acme/stasis/checkpoints`). */
  repository: string;
  /** Bound to this registry's host by the caller (registryAuthFromEnv); never sent elsewhere. */
  auth?: RegistryAuth;
  /**
   * A checkpoint's sealed stream is cut into blobs of this size (default 32 MiB): each is hashed,
   * asked for, and uploaded only when new. A put holds one blob in memory while it uploads it.
   */
  blobBytes?: number;
  /** Uploads go in PATCH chunks of this size (default 8 MiB). */
  chunkBytes?: number;
  /** Attempts per registry request on network errors, 429 and 5xx (default 5). */
  attempts?: number;
}

/** Byte counts of the last put and get, for the bench (not meaningful while puts or gets overlap). */
export interface RegistryTransferStats {
  uploadedBytes: number;
  skippedBytes: number;
  downloadedBytes: number;
}

/**
 * Checkpoints as OCI artifacts in a registry (`artifactType` application/vnd.stasis.checkpoint.v1):
 * the sealed stream (tar | zstd -1 | AES-256-GCM records, sealed-stream.ts) is cut into
 * content-addressed blobs of `blobBytes`, each uploaded in PATCH chunks only when the registry does
 * not have it, and a manifest names them in order; the tag (`<key with / as __>`) keeps it from the
 * registry's garbage collection. The location names the manifest by digest
 * (`registry:<host>/<repo>@sha256:…`) and that digest is the checkpoint's sha256: a restore fetches
 * the manifest by digest, hashes it, then hashes every blob it names before one byte is unpacked.
 * Runners on different hosts share nothing but the registry.
 */
export function createRegistryCheckpointStore(o: RegistryCheckpointStoreOptions): CheckpointStore & { readonly lastTransfer: RegistryTransferStats } {
  if (!REPO_RE.test(o.repository)) throw new CheckpointStoreError("BAD_LOCATION", `bad checkpoint repository name ${JSON.stringify(o.repository)}`);
  const client: RegistryClient = createRegistryClient({ url: o.url, auth: o.auth, attempts: o.attempts });
  const repo = `/v2/${o.repository}`;
  const name = `${client.host}/${o.repository}`;
  const blobBytes = o.blobBytes ?? 32 * 1024 * 1024;
  const chunkBytes = o.chunkBytes ?? 8 * 1024 * 1024;
  const lastTransfer: RegistryTransferStats = { uploadedBytes: 0, skippedBytes: 0, downloadedBytes: 0 };

  const digestOf = (location: string): string => {
    const expected = `${PREFIX}${name}@`;
    const digest = location.startsWith(expected) ? location.slice(expected.length) : "";
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) {
      throw new CheckpointStoreError("BAD_LOCATION", `checkpoint location ${JSON.stringify(location)} is not a ${expected}sha256:… location of this store`);
    }
    return digest;
  };

  /** Tags are `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`: a key's "/" becomes "__", which no key segment may hold, so two keys never share a tag. */
  const tagFor = (key: string): string => {
    const segments = checkKey(key);
    const tag = segments.join("__");
    if (segments.some((s) => s.includes("__")) || tag.length > 128) {
      throw new CheckpointStoreError("BAD_KEY", `bad checkpoint key ${JSON.stringify(key)} for a registry store: no "__" in a segment, at most 128 characters`);
    }
    return tag;
  };

  async function fetchManifest(digest: string, location: string): Promise<{ manifest: CheckpointManifest; bytes: Buffer }> {
    const res = await client.request({ method: "GET", path: `${repo}/manifests/${digest}`, headers: { accept: MANIFEST_TYPE } });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new CheckpointStoreError("NOT_FOUND", `checkpoint ${location} does not exist in ${name}`);
    }
    await client.expect(res, [200], `GET checkpoint manifest ${digest}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const actual = createHash("sha256").update(bytes).digest("hex");
    if (`sha256:${actual}` !== digest) {
      throw new CheckpointIntegrityError(`checkpoint ${location} has sha256 ${actual}, which does not match the sha256 ${digest.slice(7)} it was fetched by: refusing to restore it (altered or swapped)`);
    }
    const parsed = CheckpointManifest.safeParse(JSON.parse(bytes.toString("utf8")));
    if (!parsed.success) throw new CheckpointStoreError("GET_FAILED", `${location} is not a Stasis checkpoint: ${parsed.error.issues[0]?.message ?? "bad manifest"}`);
    return { manifest: parsed.data, bytes };
  }

  /** Downloads one blob to `file`, hashing as it goes; throws CheckpointIntegrityError when it is not the blob its manifest names. */
  async function downloadBlob(layer: z.infer<typeof Descriptor>, file: string, location: string): Promise<void> {
    const res = await client.request({ method: "GET", path: `${repo}/blobs/${layer.digest}` });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new CheckpointStoreError("NOT_FOUND", `checkpoint ${location} does not exist in ${name}: blob ${layer.digest} is gone`);
    }
    await client.expect(res, [200], `GET checkpoint blob ${layer.digest}`);
    const hash = createHash("sha256");
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback(size > layer.size ? new CheckpointIntegrityError(`blob ${layer.digest} of checkpoint ${location} is longer than the ${layer.size} bytes its manifest names, so it does not match the sha256 recorded`) : null, chunk);
      },
    });
    await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream), tap, createWriteStream(file, { mode: 0o600 }));
    lastTransfer.downloadedBytes += size;
    const actual = hash.digest("hex");
    if (`sha256:${actual}` !== layer.digest || size !== layer.size) {
      throw new CheckpointIntegrityError(`blob of checkpoint ${location} has sha256 ${actual}, which does not match the sha256 ${layer.digest.slice(7)} its manifest names: refusing to restore it (altered or swapped)`);
    }
  }

  async function put(key: string, imageDir: string, seal: { key: Buffer }, signal?: AbortSignal) {
    const tag = tagFor(key);
    const source = await stat(imageDir).catch(() => undefined);
    if (!source?.isDirectory()) throw new CheckpointStoreError("PUT_FAILED", `cannot store checkpoint ${key}: ${imageDir} is not a directory`);
    lastTransfer.uploadedBytes = 0;
    lastTransfer.skippedBytes = 0;
    const layers: Array<z.infer<typeof Descriptor>> = [];
    // Cut the sealed stream into blobs; each is complete (digest known) before it is asked for and
    // uploaded. One blob uploads while the next fills: packing and uploading overlap, and a put holds
    // at most two blobs in memory.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let uploading: Promise<void> = Promise.resolve();
    const sendBlob = async (body: Buffer, digest: string): Promise<void> => {
      if (await hasBlob(client, o.repository, digest)) {
        lastTransfer.skippedBytes += body.length;
        return;
      }
      await uploadBlob(client, o.repository, { digest, size: body.length, read: async (start, length) => body.subarray(start, start + length) }, { monolithicMaxBytes: chunkBytes, chunkBytes });
      lastTransfer.uploadedBytes += body.length;
    };
    const flushBlob = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
      layers.push({ mediaType: CHECKPOINT_LAYER_TYPE, digest, size: body.length });
      await uploading; // the previous blob is up (or failed: then this put fails here)
      uploading = sendBlob(body, digest);
      uploading.catch(() => {}); // awaited by the next flush or at the end
    };
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        let rest = chunk;
        const step = async () => {
          while (rest.length > 0) {
            const take = Math.min(rest.length, blobBytes - pendingBytes);
            pending.push(rest.subarray(0, take));
            pendingBytes += take;
            rest = rest.subarray(take);
            if (pendingBytes === blobBytes) await flushBlob();
          }
        };
        step().then(() => callback(), callback);
      },
      final(callback) {
        flushBlob()
          .then(() => uploading)
          .then(() => callback(), callback);
      },
    });
    try {
      await packDirInto(imageDir, sink, seal.key, signal);
      signal?.throwIfAborted();
      const manifest = {
        schemaVersion: 2,
        mediaType: MANIFEST_TYPE,
        artifactType: CHECKPOINT_ARTIFACT_TYPE,
        config: EMPTY_CONFIG,
        layers,
        annotations: { [KEY_ANNOTATION]: key, [CREATED_ANNOTATION]: new Date().toISOString() },
      };
      const bytes = Buffer.from(JSON.stringify(manifest));
      if (!(await hasBlob(client, o.repository, EMPTY_CONFIG.digest))) {
        await uploadBlob(client, o.repository, { ...EMPTY_CONFIG, read: async () => Buffer.from("{}") });
      }
      const res = await client.request({ method: "PUT", path: `${repo}/manifests/${tag}`, headers: { "content-type": MANIFEST_TYPE }, body: bytes });
      await client.expect(res, [201], `PUT checkpoint manifest ${tag}`);
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      return { location: `${PREFIX}${name}@sha256:${sha256}`, sizeBytes: layers.reduce((sum, l) => sum + l.size, 0), sha256 };
    } catch (err) {
      throw new CheckpointStoreError("PUT_FAILED", `cannot store checkpoint ${key} in ${name}: ${(err as Error).message}`, { cause: err });
    }
  }

  async function get(location: string, destDir: string, expect: { key: Buffer; sha256: string }): Promise<void> {
    const digest = digestOf(location);
    if (digest !== `sha256:${expect.sha256}`) {
      throw new CheckpointIntegrityError(`checkpoint ${location} has sha256 ${digest.slice(7)}, which does not match the sha256 ${expect.sha256} the server recorded at suspend: refusing to restore it (altered or swapped)`);
    }
    lastTransfer.downloadedBytes = 0;
    const dest = path.resolve(destDir);
    const tmp = `${dest}.${randomUUID()}.partial`;
    const blobs = `${tmp}-blobs`;
    try {
      const { manifest } = await fetchManifest(digest, location);
      await mkdir(blobs, { recursive: true, mode: 0o700 });
      const files: string[] = [];
      for (const [index, layer] of manifest.layers.entries()) {
        const file = path.join(blobs, String(index));
        await downloadBlob(layer, file, location);
        files.push(file);
      }
      // Every blob is verified: only now is a byte of it opened and unpacked.
      await mkdir(tmp, { recursive: true });
      await unpackFiles(files, tmp, expect.key);
      await mkdir(dest, { recursive: true });
      for (const entry of await readdir(tmp)) await rename(path.join(tmp, entry), path.join(dest, entry));
    } catch (err) {
      if (err instanceof CheckpointIntegrityError || err instanceof CheckpointStoreError) throw err;
      if ((err as Error).name === "SealedCheckpointError") {
        throw new CheckpointIntegrityError(`checkpoint ${location} does not open under its key: ${(err as Error).message}; nothing restored`, { cause: err });
      }
      throw new CheckpointStoreError("GET_FAILED", `cannot fetch checkpoint ${location}: ${(err as Error).message}`, { cause: err });
    } finally {
      await rm(tmp, { recursive: true, force: true });
      await rm(blobs, { recursive: true, force: true });
    }
  }

  /**
   * Deletes the manifest (and with it its tag), then its blobs: each checkpoint is sealed under its
   * own key, so no other checkpoint holds the same blob. The registry frees the disk space at its
   * next garbage collection (`registry garbage-collect`); it must allow deletes (`storage.delete.enabled`).
   */
  async function remove(location: string): Promise<void> {
    const digest = digestOf(location);
    const res = await client.request({ method: "GET", path: `${repo}/manifests/${digest}`, headers: { accept: MANIFEST_TYPE } });
    if (res.status === 404) return void (await res.body?.cancel());
    await client.expect(res, [200], `GET checkpoint manifest ${digest}`);
    const parsed = CheckpointManifest.safeParse(await res.json().catch(() => null));
    const deleted = await client.request({ method: "DELETE", path: `${repo}/manifests/${digest}` });
    if (deleted.status === 405) {
      await deleted.body?.cancel();
      throw new CheckpointStoreError("DELETE_FAILED", `${client.host} does not allow deletes: set storage.delete.enabled in the registry's config to reclaim checkpoints`);
    }
    await client.expect(deleted, [202, 404], `DELETE checkpoint manifest ${digest}`);
    for (const layer of parsed.success ? parsed.data.layers : []) {
      const gone = await client.request({ method: "DELETE", path: `${repo}/blobs/${layer.digest}` });
      await gone.body?.cancel();
    }
  }

  async function list(): Promise<StoredCheckpoint[]> {
    const tags: string[] = [];
    for (let next: string | null = `${repo}/tags/list?n=1000`; next; ) {
      const res: Response = await client.request({ method: "GET", path: next });
      if (res.status === 404) {
        await res.body?.cancel();
        break; // no checkpoint was ever stored
      }
      await client.expect(res, [200], `list the tags of ${name}`);
      const body = (await res.json()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const link = res.headers.get("link")?.match(/<([^>]+)>/)?.[1];
      next = link ?? null;
    }
    const stored: StoredCheckpoint[] = [];
    for (const tag of tags) {
      const res = await client.request({ method: "GET", path: `${repo}/manifests/${tag}`, headers: { accept: MANIFEST_TYPE } });
      if (res.status === 404) {
        await res.body?.cancel();
        continue; // deleted meanwhile
      }
      await client.expect(res, [200], `GET checkpoint manifest ${tag}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      const parsed = CheckpointManifest.safeParse(JSON.parse(bytes.toString("utf8")));
      if (!parsed.success) continue; // not one of ours
      const key = parsed.data.annotations?.[KEY_ANNOTATION] ?? tag.split("__").join("/");
      const created = Date.parse(parsed.data.annotations?.[CREATED_ANNOTATION] ?? "");
      stored.push({
        location: `${PREFIX}${name}@sha256:${createHash("sha256").update(bytes).digest("hex")}`,
        key,
        sizeBytes: parsed.data.layers.reduce((sum, l) => sum + l.size, 0),
        createdAt: Number.isFinite(created) ? created : 0,
      });
    }
    return stored;
  }

  return { put, get, delete: remove, list, lastTransfer };
}
