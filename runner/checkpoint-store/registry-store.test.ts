import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type TestRegistry } from "../../test/support/registry.ts";
import { describeCheckpointStore } from "./conformance.ts";
import { createRegistryCheckpointStore } from "./index.ts";

const SEAL = { key: randomBytes(32) };

function blobFile(registry: TestRegistry, digest: string): string {
  const hex = digest.slice("sha256:".length);
  return path.join(registry.storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
}

async function layersOf(registry: TestRegistry, repository: string, location: string): Promise<string[]> {
  const digest = location.slice(location.lastIndexOf("@") + 1);
  const manifest = (await (await fetch(`${registry.url}/v2/${repository}/manifests/${digest}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).json()) as { layers: Array<{ digest: string }> };
  return manifest.layers.map((l) => l.digest);
}

describeCheckpointStore("OCI registry (docker-registry)", async () => {
  const registry = await startRegistry();
  const repository = "stasis/checkpoints";
  // Small blobs, so the suite's 5 MiB image is several blobs uploaded in several chunks.
  const store = createRegistryCheckpointStore({ url: registry.url, repository, blobBytes: 512 * 1024, chunkBytes: 128 * 1024 });
  const firstBlob = new Map<string, string>();
  return {
    store: {
      ...store,
      async put(key, imageDir, seal, signal) {
        const stored = await store.put(key, imageDir, seal, signal);
        firstBlob.set(stored.location, blobFile(registry, (await layersOf(registry, repository, stored.location))[0]!));
        return stored;
      },
    },
    peer: createRegistryCheckpointStore({ url: registry.url, repository }),
    cleanup: () => registry.stop(),
    fileOf: (location) => firstBlob.get(location)!,
  };
});

describe("registry checkpoint store", () => {
  let registry: TestRegistry;
  let scratch: string;
  beforeAll(async () => {
    registry = await startRegistry();
    scratch = await mkdtemp(path.join(tmpdir(), "stasis-registry-ckpt-"));
    await mkdir(path.join(scratch, "images"));
    await writeFile(path.join(scratch, "images", "pages-1.img"), randomBytes(3 << 20));
  });
  afterAll(async () => {
    await registry?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it("keeps a checkpoint as an OCI artifact that skopeo can inspect, in content-addressed blobs", async () => {
    const store = createRegistryCheckpointStore({ url: registry.url, repository: "acme/checkpoints", blobBytes: 1 << 20, chunkBytes: 256 * 1024 });
    const stored = await store.put("run_a/1-1", path.join(scratch, "images"), SEAL);
    expect(stored.location).toBe(`registry:${registry.host}/acme/checkpoints@sha256:${stored.sha256}`);
    expect(store.lastTransfer.uploadedBytes).toBe(stored.sizeBytes);
    const layers = await layersOf(registry, "acme/checkpoints", stored.location);
    expect(layers.length).toBe(4); // 3 MiB of random pages, sealed: a bit over 3 blobs of 1 MiB
    const manifest = JSON.parse(await readFile(blobFile(registry, `sha256:${stored.sha256}`), "utf8")) as { artifactType: string; annotations: Record<string, string> };
    expect(manifest.artifactType).toBe("application/vnd.stasis.checkpoint.v1");
    expect(manifest.annotations["dev.stasis.checkpoint.key"]).toBe("run_a/1-1");
    const { execFile } = await import("node:child_process");
    const inspected = await new Promise<string>((resolve, reject) =>
      execFile("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/acme/checkpoints:run_a__1-1`], (error, stdout) => (error ? reject(error) : resolve(stdout))),
    );
    expect(JSON.parse(inspected).layers).toHaveLength(4);
  });

  it("refuses a location in another registry or repository, without asking it", async () => {
    const store = createRegistryCheckpointStore({ url: registry.url, repository: "acme/checkpoints" });
    for (const location of [`registry:evil.example/acme/checkpoints@sha256:${"0".repeat(64)}`, `registry:${registry.host}/other/repo@sha256:${"0".repeat(64)}`, `dir:run_a/1.tar.zst.sealed`]) {
      await expect(store.get(location, path.join(scratch, "never"), { key: SEAL.key, sha256: "0".repeat(64) }), location).rejects.toThrow(/is not a registry:.* location of this store/);
      await expect(store.delete(location), location).rejects.toThrow(/location of this store/);
    }
  });

  it("deletes the checkpoint's manifest, tag and blobs", async () => {
    const store = createRegistryCheckpointStore({ url: registry.url, repository: "acme/deleted", blobBytes: 1 << 20 });
    const stored = await store.put("run_b/1-1", path.join(scratch, "images"), SEAL);
    const layers = await layersOf(registry, "acme/deleted", stored.location);
    await store.delete(stored.location);
    for (const digest of layers) expect((await fetch(`${registry.url}/v2/acme/deleted/blobs/${digest}`, { method: "HEAD" })).status).toBe(404);
    expect((await fetch(`${registry.url}/v2/acme/deleted/manifests/run_b__1-1`, { method: "HEAD" })).status).toBe(404);
    expect(await store.list()).toEqual([]);
  });

  it("fails a put whose upload fails, naming the checkpoint, and leaves no manifest", async () => {
    const gone = await startRegistry();
    await gone.stop();
    const store = createRegistryCheckpointStore({ url: gone.url, repository: "acme/checkpoints", blobBytes: 1 << 20, attempts: 1 });
    await expect(store.put("run_c/1-1", path.join(scratch, "images"), SEAL)).rejects.toThrow(/cannot store checkpoint run_c\/1-1 in 127\.0\.0\.1:\d+\/acme\/checkpoints: .*failed/);
  });

  it("refuses keys that would not make a distinct tag", async () => {
    const store = createRegistryCheckpointStore({ url: registry.url, repository: "acme/checkpoints" });
    await expect(store.put("run__x/1", path.join(scratch, "images"), SEAL)).rejects.toThrow(/bad checkpoint key/);
    await expect(store.put(`run_x/${"1".repeat(130)}`, path.join(scratch, "images"), SEAL)).rejects.toThrow(/bad checkpoint key/);
  });
});
