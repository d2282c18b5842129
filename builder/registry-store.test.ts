import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type TestRegistry } from "../test/support/registry.ts";
import { describeImageStoreConformance, makeTestImage } from "./image-store.conformance.ts";
import { buildImage } from "./build-image.ts";
import { openImageStore } from "./open-image-store.ts";
import { createRegistryImageStore, parseRegistryRef } from "./registry-store.ts";

const run = promisify(execFile);

function registryBlobPath(registry: TestRegistry, digest: string): string {
  const hex = digest.slice(7);
  return join(registry.storageDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
}

describeImageStoreConformance("OCI registry (docker-registry)", async () => {
  const registry = await startRegistry();
  return {
    store: createRegistryImageStore({ url: registry.url, repository: "conformance/app" }),
    async tamper(digest) {
      const path = registryBlobPath(registry, digest);
      const bytes = await readFile(path);
      bytes[bytes.length - 10] ^= 0xff;
      await writeFile(path, bytes);
    },
    cleanup: () => registry.stop(),
  };
});

/** A front for the real registry that demands credentials the way Docker Hub (bearer) or a plain htpasswd registry (basic) do. */
async function startAuthProxy(upstream: TestRegistry, mode: "basic" | "bearer"): Promise<{ url: string; server: Server; tokenRequests: number }> {
  const state = { url: "", server: null as unknown as Server, tokenRequests: 0 };
  const good = "Basic " + Buffer.from("ci:s3cret").toString("base64");
  state.server = createServer((req, res) => {
    if (req.url?.startsWith("/token")) {
      state.tokenRequests++;
      if (req.headers.authorization !== good) return void res.writeHead(401).end();
      return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: "tok-123" }));
    }
    const ok = mode === "basic" ? req.headers.authorization === good : req.headers.authorization === "Bearer tok-123";
    if (!ok) {
      const challenge = mode === "basic" ? 'Basic realm="test"' : `Bearer realm="${state.url}/token",service="test",scope="repository:auth/app:pull,push"`;
      return void res.writeHead(401, { "www-authenticate": challenge }).end();
    }
    const target = new URL(upstream.url);
    const forward = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => state.server.listen(0, "127.0.0.1", resolve));
  const address = state.server.address();
  state.url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  return state;
}

describe("OCI registry store", () => {
  let registry: TestRegistry;
  let work: string;
  beforeAll(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), "stasis-registry-test-"));
  });
  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("uploads large blobs in chunks, and skopeo and umoci accept the pushed image", async () => {
    const image = await makeTestImage(join(work, "build"), "chunked\n", 300_000);
    const store = createRegistryImageStore({ url: registry.url, repository: "tools/app", monolithicMaxBytes: 64 * 1024, chunkBytes: 64 * 1024 });
    const progress: string[] = [];
    const pushed = await store.push(image, "20261128.1", (m) => progress.push(m));
    expect(progress.some((m) => /uploading .*: 65536\//.test(m))).toBe(true);
    expect(pushed.ref).toBe(`${registry.host}/tools/app@${image.digest}`);

    const inspect = JSON.parse((await run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/tools/app:20261128.1`])).stdout);
    expect(inspect.Digest).toBe(image.digest);
    await run("skopeo", ["copy", "--src-tls-verify=false", `docker://${registry.host}/tools/app@${image.digest}`, `oci:${join(work, "copied")}:v1`]);
    await run("umoci", ["unpack", "--image", `${join(work, "copied")}:v1`, join(work, "bundle")]);
    expect(await readFile(join(work, "bundle", "rootfs", "app", "hello.txt"), "utf8")).toBe("chunked\n");

    const fetched = await openImageStore(pushed.ref).fetch(pushed.ref, join(work, "cache"));
    expect(await readFile(join(fetched.appDir, "hello.txt"), "utf8")).toBe("chunked\n");
  });

  for (const mode of ["basic", "bearer"] as const) {
    it(`answers a ${mode} auth challenge with the given credentials`, async () => {
      const proxy = await startAuthProxy(registry, mode);
      try {
        const image = await makeTestImage(join(work, `build-${mode}`), `${mode}\n`);
        const anonymous = createRegistryImageStore({ url: proxy.url, repository: `auth/${mode}` });
        await expect(anonymous.push(image, "v1")).rejects.toThrow(/requires authentication and none were given/);
        const wrong = createRegistryImageStore({ url: proxy.url, repository: `auth/${mode}`, auth: { username: "ci", password: "nope" } });
        await expect(wrong.push(image, "v1")).rejects.toThrow(/refused the credentials/);
        const store = createRegistryImageStore({ url: proxy.url, repository: `auth/${mode}`, auth: { username: "ci", password: "s3cret" } });
        const pushed = await store.push(image, "v1");
        expect(pushed.bytesUploaded).toBeGreaterThan(0);
        const fetched = await store.fetch(`${new URL(proxy.url).host}/auth/${mode}:v1`, join(work, `cache-${mode}`));
        expect(await readFile(join(fetched.appDir, "hello.txt"), "utf8")).toBe(`${mode}\n`);
        if (mode === "bearer") expect(proxy.tokenRequests).toBeGreaterThan(0);
      } finally {
        proxy.server.close();
      }
    });
  }

  it("builds examples/hello on a base image pulled from the registry", async () => {
    const base = await makeTestImage(join(work, "base"), "base image\n");
    const pushedBase = await createRegistryImageStore({ url: registry.url, repository: "base/node" }).push(base, "1");
    const image = await buildImage({ projectDir: resolve(import.meta.dirname, "../examples/hello"), base: { kind: "registry", ref: `${registry.host}/base/node:1` }, buildDir: join(work, "on-base"), sourceDateEpoch: 0 });
    expect(image.layers.slice(0, 2).map((l) => l.digest)).toEqual(base.layers.map((l) => l.digest));
    expect(image.layers).toHaveLength(3);
    const pushed = await createRegistryImageStore({ url: registry.url, repository: "base/node" }).push(image, "app-1");
    expect(pushed.blobsSkipped).toBe(2);
    expect(pushedBase.digest).toBe(base.digest);
  });

  it("parses registry references", () => {
    const d = "sha256:" + "b".repeat(64);
    expect(parseRegistryRef(`127.0.0.1:5000/acme/app@${d}`)).toEqual({ host: "127.0.0.1:5000", repository: "acme/app", digest: d, tag: undefined });
    expect(parseRegistryRef("ghcr.io/acme/app:20261128.1")).toMatchObject({ host: "ghcr.io", repository: "acme/app", tag: "20261128.1" });
    expect(() => parseRegistryRef("app")).toThrow(/registry host/);
  });
});
