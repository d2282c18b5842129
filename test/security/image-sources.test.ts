// Image references: the deployments API takes only well-formed refs of configured registries; a
// runner pulls only from the registries it is configured for (the run fails, the runner lives);
// registry credentials go only to the host they are bound to — never to another registry, a token
// realm on another host, or a redirect's target.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openImageStore } from "../../builder/index.ts";
import type { RunView, TriggerResponse } from "../../schemas/index.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "../support/stack.ts";

interface FakeHost {
  host: string;
  seen: Array<{ url: string; authorization?: string }>;
  close(): Promise<void>;
}

/** A stand-in HTTP host that records what reaches it and answers with `handle`. */
type Answer = { status: number; headers?: Record<string, string>; body?: string };

async function fakeHost(address: string, handle: (url: string, headers: IncomingHttpHeaders, self: FakeHost) => Answer): Promise<FakeHost> {
  const self: FakeHost = { host: "", seen: [], close: async () => {} };
  const server: Server = createServer((req, res) => {
    self.seen.push({ url: req.url!, authorization: req.headers.authorization });
    const answer = handle(req.url!, req.headers, self);
    res.writeHead(answer.status, answer.headers ?? {});
    res.end(answer.body ?? "");
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  self.host = `${address}:${(server.address() as { port: number }).port}`;
  self.close = () => new Promise((resolve) => server.close(() => resolve()));
  return self;
}

const DIGEST = `sha256:${"ab".repeat(32)}`;

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, value] of Object.entries(v)) value === undefined ? delete process.env[k] : (process.env[k] = value);
  };
  set(vars);
  return fn().finally(() => set(saved));
}

describe("registry credentials are bound to their host", () => {
  let registry: FakeHost;
  let realm: FakeHost;
  let stranger: FakeHost;
  let storage: FakeHost;

  beforeAll(async () => {
    realm = await fakeHost("127.0.0.2", () => ({ status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ token: "anonymous-or-not" }) }));
    storage = await fakeHost("127.0.0.4", () => ({ status: 404 }));
    registry = await fakeHost("127.0.0.1", (url, headers): Answer => {
      if (url.includes("/redirected/")) return { status: 307, headers: { location: `http://${storage.host}/blob` } };
      if (!headers.authorization) return { status: 401, headers: { "www-authenticate": `Bearer realm="http://${realm.host}/token",service="fake",scope="repository:app:pull"` } };
      return { status: 404 };
    });
    stranger = await fakeHost("127.0.0.3", () => ({ status: 401, headers: { "www-authenticate": 'Basic realm="stranger"' } }));
  });
  afterAll(async () => {
    await Promise.all([registry, realm, stranger, storage].map((h) => h?.close()));
  });

  const creds = () => ({ STASIS_REGISTRY: `${registry.host}/apps`, STASIS_REGISTRY_USERNAME: "robot", STASIS_REGISTRY_PASSWORD: "s3cret-registry-password", STASIS_REGISTRY_TOKEN: undefined });
  const fetchRef = (ref: string) => openImageStore(ref).fetch(ref, "/nonexistent-cache").then(() => null, (e: Error & { code?: string }) => e);

  it("another registry named by an image reference gets no credentials", async () => {
    const error = await withEnv(creds(), () => fetchRef(`${stranger.host}/app@${DIGEST}`));
    expect(error?.code).toBe("REGISTRY_AUTH");
    expect(error?.message).toContain("none were given (registry credentials go only to STASIS_REGISTRY_AUTH_HOST, else the host of STASIS_REGISTRY)");
    expect(stranger.seen.length).toBeGreaterThan(0);
    expect(stranger.seen.every((r) => r.authorization === undefined)).toBe(true);
  });

  it("a token realm on another host gets no Basic credentials unless configured", async () => {
    realm.seen.length = 0;
    await withEnv(creds(), () => fetchRef(`${registry.host}/app@${DIGEST}`));
    expect(realm.seen).toHaveLength(1);
    expect(realm.seen[0]!.authorization).toBeUndefined();

    realm.seen.length = 0;
    await withEnv({ ...creds(), STASIS_REGISTRY_TOKEN_REALMS: realm.host }, () => fetchRef(`${registry.host}/app@${DIGEST}`));
    expect(realm.seen[0]!.authorization).toBe(`Basic ${Buffer.from("robot:s3cret-registry-password").toString("base64")}`);
  });

  it("a redirect to another host does not carry the Authorization header", async () => {
    storage.seen.length = 0;
    const error = await withEnv({ ...creds(), STASIS_REGISTRY_USERNAME: undefined, STASIS_REGISTRY_PASSWORD: undefined, STASIS_REGISTRY_TOKEN: "static-bearer-token" }, () => fetchRef(`${registry.host}/redirected/app@${DIGEST}`));
    expect(error).not.toBeNull();
    expect(registry.seen.some((r) => r.url.includes("/redirected/") && r.authorization === "Bearer static-bearer-token")).toBe(true);
    expect(storage.seen).toHaveLength(1);
    expect(storage.seen[0]!.authorization).toBeUndefined();
  });
});

describe("image references of unconfigured registries", () => {
  let stack: TestStack;
  let evil: FakeHost;
  let manifest: unknown;

  beforeAll(async () => {
    evil = await fakeHost("127.0.0.5", () => ({ status: 404 }));
    // The server is configured for this registry (and local layouts); the runner below is not.
    process.env.STASIS_ALLOWED_REGISTRIES = `${evil.host}/trusted,oci-layout:*`;
    stack = await startTestStack({ project: "hello" });
    const first = await stack.deploy(`${REPO_ROOT}/examples/hello`);
    manifest = (await stack.local.db("deployments").where({ id: first.id }).first("manifest")).manifest;
  });
  afterAll(async () => {
    delete process.env.STASIS_ALLOWED_REGISTRIES;
    await stack?.stop();
    await evil?.close();
  });

  const create = (imageRef: string, imageDigest = DIGEST) =>
    fetch(`${stack.apiUrl}/api/v1/deployments`, { method: "POST", headers: { authorization: `Bearer ${stack.keys.development}`, "content-type": "application/json" }, body: JSON.stringify({ imageRef, imageDigest, manifest, promote: false }) }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: string; message: string; field?: string } } }));

  it("the API refuses a malformed imageRef, one not naming its digest, and one of a registry it is not configured for", async () => {
    const before = await stack.local.db("deployments").count("* as n").first();
    const cases: Array<[string, string, RegExp]> = [
      [`127.0.0.9:5000/evil@${DIGEST}`, "IMAGE_NOT_ALLOWED", /images may come only from configured registries .* the registry 127\.0\.0\.9:5000\/evil is not one of 127\.0\.0\.5:\d+\/trusted, oci-layout:\*/],
      [`${evil.host}/other@${DIGEST}`, "IMAGE_NOT_ALLOWED", /the registry 127\.0\.0\.5:\d+\/other is not one of/],
      [`oci-layout:relative/dir@${DIGEST}`, "VALIDATION_FAILED", /imageRef.*imageRef is oci-layout:<absolute dir>@sha256/],
      [`oci-layout:/srv/../etc@${DIGEST}`, "VALIDATION_FAILED", /imageRef.*imageRef is oci-layout:<absolute dir>@sha256/],
      [`${evil.host}/trusted:latest`, "VALIDATION_FAILED", /imageRef is oci-layout/],
      [`${evil.host}/trusted@sha256:${"cd".repeat(32)}`, "BAD_REQUEST", /does not name imageDigest/],
    ];
    for (const [ref, code, text] of cases) {
      const res = await create(ref);
      expect(res.status, ref).toBe(400);
      expect(res.body.error?.code, ref).toBe(code);
      expect(res.body.error?.message, ref).toMatch(text);
    }
    expect(await stack.local.db("deployments").count("* as n").first()).toEqual(before);
  });

  it("a runner refuses an image of a registry it is not configured for: the run fails naming the rule, the runner lives", async () => {
    const runner = await stack.startRunnerProcess({ env: { STASIS_ALLOWED_REGISTRIES: "oci-layout:*" }, checkpoints: false });
    const created = await create(`${evil.host}/trusted/hello@${DIGEST}`);
    expect(created.status).toBe(200);
    const { id } = await stack.api<TriggerResponse>("POST", "/api/v1/tasks/hello/trigger", { payload: {}, options: { version: (created.body as unknown as { version: string }).version } });
    const run = await stack.waitForRun(id, (r: RunView) => r.status === "FAILED", "the run of the refused image to fail", 90_000);
    expect(run.error?.message).toContain("images may come only from configured registries");
    expect(run.error?.message).toContain(`the registry ${evil.host}/trusted/hello is not one of oci-layout:*`);
    expect(evil.seen).toEqual([]);
    expect(runner.child.exitCode).toBeNull();

    // The same runner still runs the allowed (layout) version.
    const ok = await stack.api<TriggerResponse>("POST", "/api/v1/tasks/hello/trigger", { payload: { name: "after" } });
    const done = await stack.waitForRun(ok.id, (r) => r.status === "COMPLETED", "a later run on the same runner");
    expect(done.output).toEqual({ greeting: "Hello, after!" });
  });
});
