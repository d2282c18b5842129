// The server under fuzz: the real app on a real database, seeded with a bit of everything (projects,
// keys, a deployment, a runner holding leases, a request token, a deploy token, a trusted OIDC issuer)
// so generated requests reach past "not found". Its scheduler is stopped: between two requests no row
// changes unless a request changed it.
import { createHash } from "node:crypto";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import type { Knex } from "knex";
import { createServer, ensureProject, type StasisServer } from "../../server/index.ts";
import { DIGEST, manifest } from "../support/server-fixture.ts";
import type { Dictionary } from "./zod-arbitrary.ts";

const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");

export const FUZZ_ADMIN_TOKEN = "fuzz-admin-token-0123456789abcdef";
export const FUZZ_RUNNER_TOKEN = "fuzz-runner-token-0123456789abcdef";

export type CredentialKind = "admin" | "runner" | "env" | "deploy-token";

export interface FuzzStack {
  server: StasisServer;
  db: Knex;
  credentials: Record<CredentialKind, string>;
  /** Field / path-parameter name → values known to exist; grows with what 2xx responses return. */
  dictionary: Dictionary;
  /** Values harvested together from one object (`{runId, leaseId}` of a claim), to be sent together. */
  tuples: Array<Record<string, string>>;
  /** Adds the ids a successful response carries to the dictionary. */
  harvest(body: unknown): void;
  /**
   * Undoes what a successful request did to the fuzzer's own footing (its production key revoked by
   * a key rotation, its environment archived, its deploy token expired), so later requests still
   * carry valid credentials. Called after 2xx answers only, before the next fingerprint.
   */
  repair(): Promise<void>;
  close(): Promise<void>;
}

const HARVESTED = ["id", "runId", "runIds", "runnerId", "leaseId", "waitpointId", "token", "version", "apiKey"] as const;
const PER_KEY = 40;
const ID_PREFIXES: Record<string, string> = { run: "runId", runner: "runnerId", lease: "leaseId", wp: "waitpointId", evt: "eventId" };

async function startOidcIssuer() {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "fuzz", alg: "RS256", use: "sig" };
  const http: Server = createHttpServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "fuzz" }).setIssuer(issuer).setAudience("stasis").setIssuedAt().setExpirationTime("2h").sign(privateKey);
  return { issuer, sign, close: () => new Promise<void>((resolve) => http.close(() => resolve())) };
}

export async function startFuzzStack(db: Knex): Promise<FuzzStack> {
  const oidc = await startOidcIssuer();
  // Read by the OIDC routes when the app is built.
  process.env.STASIS_OIDC_ISSUER = oidc.issuer;
  process.env.STASIS_OIDC_JWKS_URL = `${oidc.issuer}/.well-known/jwks`;
  process.env.STASIS_OIDC_AUDIENCE = "stasis";
  const server = await createServer({ db, adminToken: FUZZ_ADMIN_TOKEN, runnerToken: FUZZ_RUNNER_TOKEN, publicUrl: "http://127.0.0.1:9999", logger: process.env.FUZZ_SERVER_LOG ? { level: "error" } : false });
  await server.scheduler.stop();

  const demo = await ensureProject(db, { slug: "demo" });
  await ensureProject(db, { slug: "other", repository: "acme/other" });
  const keys = Object.fromEntries(demo.keys.map((k) => [k.environment, k.apiKey]));
  const call = async (method: string, url: string, key: string, body?: unknown) => {
    const res = await server.app.inject({ method: method as "POST", url, headers: { authorization: `Bearer ${key}` }, ...(body === undefined ? {} : { payload: body as object }) });
    if (res.statusCode !== 200) throw new Error(`fuzz fixture ${method} ${url}: ${res.statusCode} ${res.body}`);
    return res.json();
  };

  const known: Record<string, unknown[]> = {
    project: ["demo", "other", "no-such-project"],
    env: ["production", "staging", "preview/fuzz"],
    environment: ["production", "staging", "preview/fuzz"],
    task: ["hello", "child", "no-such-task"],
    taskId: ["hello", "child", "no-such-task"],
    event: ["order.paid", "fuzz"],
    slug: ["other", "fuzzed", "preview/fuzz"],
    repository: ["acme/other"],
  };
  const add = (key: string, value: unknown) => {
    if (typeof value !== "string" && typeof value !== "number") return;
    const list = (known[key] ??= []);
    if (list.includes(value)) return;
    list.push(value);
    if (list.length > PER_KEY) list.splice(0, list.length - PER_KEY);
  };
  const tuples: Array<Record<string, string>> = [];
  const harvest = (body: unknown, depth = 0): void => {
    if (depth > 4 || !body || typeof body !== "object") return;
    if (Array.isArray(body)) return body.slice(0, 10).forEach((b) => harvest(b, depth + 1));
    const linked: Record<string, string> = {};
    for (const [k, v] of Object.entries(body)) {
      if ((HARVESTED as readonly string[]).includes(k)) {
        for (const one of [v].flat()) {
          // An `id` goes to the name its prefix says (run_… → runId); path parameters are named after what they hold.
          const name = k === "id" || k === "runIds" ? (ID_PREFIXES[/^([a-z]+)_/.exec(String(one))?.[1] ?? ""] ?? k) : k;
          add(name, one);
          if (name === "runId") add("id", one);
          if (typeof one === "string" && !Array.isArray(v)) linked[name] = one;
        }
      } else harvest(v, depth + 1);
    }
    // Values that belong together (a claimed run's id and its lease): kept as one tuple.
    if (Object.keys(linked).length >= 2) {
      tuples.push(linked);
      if (tuples.length > 20) tuples.shift();
    }
  };

  const deployment = await call("POST", "/api/v1/deployments", keys.production, {
    imageRef: `oci-layout:/tmp/fuzz@${DIGEST}`,
    imageDigest: DIGEST,
    manifest: manifest(["hello", "child"]),
  });
  harvest(deployment);
  const runner = await call("POST", "/api/v1/runner/register", FUZZ_RUNNER_TOKEN, { name: "fuzz-runner", capacity: 8, checkpoints: true });
  harvest(runner);
  for (let i = 0; i < 4; i++) harvest(await call("POST", "/api/v1/tasks/hello/trigger", keys.production, { payload: { i } }));
  const claimed = await call("POST", "/api/v1/runner/poll", FUZZ_RUNNER_TOKEN, { runnerId: runner.runnerId, freeSlots: 2, waitMs: 0 });
  harvest(claimed);
  const held = claimed.runs[0];
  harvest(await call("POST", `/api/v1/runner/runs/${held.runId}/request-tokens`, FUZZ_RUNNER_TOKEN, { leaseId: held.leaseId }));
  const deployToken = await call("POST", "/api/v1/auth/deploy-tokens", keys.production, { environment: "production" });
  const oidcTokens = [
    await oidc.sign({ repository: "acme/other", event_name: "push", sub: "repo:acme/other:ref:refs/heads/main" }),
    await oidc.sign({ repository: "acme/other", event_name: "pull_request", sub: "repo:acme/other:pull_request" }),
    await oidc.sign({ repository: "acme/unlinked", event_name: "push" }),
  ];
  known.token = [...(known.token ?? []), ...oidcTokens];

  const dictionary: Dictionary = new Proxy({} as Dictionary, {
    get: (_t, key: string) => (key in known || (HARVESTED as readonly string[]).includes(key) ? () => known[key] ?? [] : undefined),
  });

  return {
    server,
    db,
    credentials: { admin: FUZZ_ADMIN_TOKEN, runner: FUZZ_RUNNER_TOKEN, env: keys.production, "deploy-token": deployToken.token },
    dictionary,
    tuples,
    harvest: (body) => harvest(body),
    async repair() {
      const envKey = sha256(keys.production);
      await db("api_keys").where({ key_hash: envKey }).whereNotNull("revoked_at").update({ revoked_at: null });
      await db("environments").whereIn("id", db("api_keys").where({ key_hash: envKey }).select("environment_id")).whereNotNull("archived_at").update({ archived_at: null });
      await db("deploy_tokens").where({ token_hash: sha256(deployToken.token) }).where("expires_at", "<", db.raw("now() + interval '10 minutes'")).update({ expires_at: db.raw("now() + interval '1 hour'") });
    },
    async close() {
      await server.close();
      await oidc.close();
    },
  };
}
