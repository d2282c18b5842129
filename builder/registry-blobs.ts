import { BuilderError } from "./errors.ts";
import type { RegistryClient } from "./registry-client.ts";

/** A blob to upload: its digest and size are known up front; `read` gives any byte range of it. */
export interface UploadableBlob {
  digest: string;
  size: number;
  read(start: number, length: number): Promise<Buffer>;
}

export interface UploadBlobOptions {
  /** Blobs up to this size go up in one PUT; larger ones in PATCH chunks (default 8 MiB). */
  monolithicMaxBytes?: number;
  chunkBytes?: number;
  onProgress?: (message: string) => void;
}

/** `HEAD /v2/<repo>/blobs/<digest>`: does the repository have this blob? */
export async function hasBlob(client: RegistryClient, repository: string, digest: string): Promise<boolean> {
  const res = await client.request({ method: "HEAD", path: `/v2/${repository}/blobs/${digest}` });
  if (res.status === 404) return false;
  await client.expect(res, [200], `HEAD blob ${digest}`);
  return true;
}

function withDigest(client: RegistryClient, location: string, digest: string): string {
  const url = new URL(location, client.url);
  url.searchParams.set("digest", digest);
  return url.toString();
}

/**
 * Uploads one blob over the Distribution API: one `PUT` when it is small, else `PATCH` chunks of
 * `chunkBytes` and a closing `PUT ?digest=` — the registry checks the digest of what it received.
 */
export async function uploadBlob(client: RegistryClient, repository: string, blob: UploadableBlob, o: UploadBlobOptions = {}): Promise<void> {
  const monolithicMax = o.monolithicMaxBytes ?? 8 * 1024 * 1024;
  const chunkBytes = o.chunkBytes ?? 8 * 1024 * 1024;
  const what = `upload ${blob.digest}`;
  const started = await client.expect(await client.request({ method: "POST", path: `/v2/${repository}/blobs/uploads/` }), [202], what);
  let location = started.headers.get("location");
  if (!location) throw new BuilderError("REGISTRY_ERROR", `${what}: no upload location`);
  if (blob.size <= monolithicMax) {
    const body = await blob.read(0, blob.size);
    const res = await client.request({ method: "PUT", path: withDigest(client, location, blob.digest), headers: { "content-type": "application/octet-stream" }, body });
    await client.expect(res, [201], what);
    return;
  }
  for (let start = 0; start < blob.size; start += chunkBytes) {
    const length = Math.min(chunkBytes, blob.size - start);
    const body = await blob.read(start, length);
    const res = await client.request({
      method: "PATCH",
      path: location,
      headers: { "content-type": "application/octet-stream", "content-range": `${start}-${start + length - 1}` },
      body,
    });
    await client.expect(res, [202], `${what} chunk at ${start}`);
    location = res.headers.get("location") ?? location;
    o.onProgress?.(`uploading ${blob.digest.slice(7, 19)}: ${start + length}/${blob.size} bytes`);
  }
  const done = await client.request({ method: "PUT", path: withDigest(client, location, blob.digest), body: Buffer.alloc(0) });
  await client.expect(done, [201], what);
}
