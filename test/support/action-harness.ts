// What the action tests share: the real local stack (server + PostgreSQL + layout image dir), a
// local OIDC issuer (JWKS + the runner's ID-token endpoint), real webhook payloads, and a way to run
// action/dist/index.js the way GitHub's runner does (INPUT_*, GITHUB_EVENT_PATH, GITHUB_OUTPUT, …).
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";
import { startLocalStack, type LocalStack } from "../../cli/local-stack.ts";
import type { Keyring } from "../../server/index.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";

export const REPO_ROOT = resolve(import.meta.dirname, "..", "..");
export const ACTION_DIST = join(REPO_ROOT, "action", "dist", "index.js");
export const HELLO_DIR = join(REPO_ROOT, "examples", "hello");

export interface OidcIssuer {
  issuer: string;
  jwksUrl: string;
  /** ACTIONS_ID_TOKEN_REQUEST_URL / _TOKEN for the action: the endpoint hands out `claims` signed by the issuer. */
  requestUrl: string;
  requestToken: string;
  claims: Record<string, unknown>;
  sign(claims: Record<string, unknown>, options?: { audience?: string; expiresIn?: string | number; issuedAt?: number; foreignKey?: boolean }): Promise<string>;
  close(): Promise<void>;
}

/** A JWKS endpoint with a key generated here, and the runner's ID-token endpoint (`?audience=`). */
export async function startOidcIssuer(): Promise<OidcIssuer> {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const foreign = await generateKeyPair("RS256");
  const kid = "test-key-1";
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  const requestToken = randomBytes(16).toString("hex");
  let issuer = "";
  const self: OidcIssuer = {
    issuer: "",
    jwksUrl: "",
    requestUrl: "",
    requestToken,
    claims: {},
    async sign(claims, options = {}) {
      const jwt = new SignJWT({ ...claims })
        .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
        .setIssuer(issuer)
        .setAudience(options.audience ?? "stasis")
        .setSubject(String(claims.sub ?? "repo:acme/hello:ref:refs/heads/main"))
        .setIssuedAt(options.issuedAt)
        .setExpirationTime(options.expiresIn ?? "5m");
      return jwt.sign(options.foreignKey ? foreign.privateKey : privateKey);
    },
    close: async () => {},
  };
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", issuer);
    if (url.pathname === "/.well-known/jwks") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [jwk] }));
    } else if (url.pathname === "/id-token") {
      if (req.headers.authorization !== `Bearer ${requestToken}`) return void res.writeHead(401).end("bad request token");
      const value = await self.sign(self.claims, { audience: url.searchParams.get("audience") ?? undefined });
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ value }));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  Object.assign(self, {
    issuer,
    jwksUrl: `${issuer}/.well-known/jwks`,
    requestUrl: `${issuer}/id-token?api-version=2.0`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
  return self;
}

export interface ActionStack {
  stack: LocalStack;
  database: TestDatabase;
  stateDir: string;
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  api(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

/** The real server on a fresh database; no runners unless asked (most of these tests deploy, they do not run tasks). */
export async function startActionStack(oidc?: OidcIssuer, options: { runners?: number; keyring?: Keyring } = {}): Promise<ActionStack> {
  if (oidc) {
    process.env.STASIS_OIDC_ISSUER = oidc.issuer;
    process.env.STASIS_OIDC_JWKS_URL = oidc.jwksUrl;
  }
  const database = await createTestDatabase();
  const stateDir = await mkdtemp(join(tmpdir(), "stasis-action-"));
  const stack = await startLocalStack({ stateDir, databaseUrl: database.url, runners: options.runners ?? 0, checkpoints: false, ...(options.keyring ? { keyring: options.keyring } : {}) });
  const api = async (token: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${stack.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  return {
    stack,
    database,
    stateDir,
    api,
    admin: (method, path, body) => api(stack.adminToken, method, path, body),
    async close() {
      await stack.stop();
      await database.drop();
      await rm(stateDir, { recursive: true, force: true });
      // Light test files share one process: the next stack starts with the default issuer.
      if (oidc) for (const name of ["STASIS_OIDC_ISSUER", "STASIS_OIDC_JWKS_URL"]) delete process.env[name];
    },
  };
}

const examples = createRequire(import.meta.url)("@octokit/webhooks-examples") as Array<{ name: string; examples: Array<Record<string, any>> }>;

/**
 * A real payload from @octokit/webhooks-examples, with only the repository names changed
 * (Codertocat/Hello-World → `repository`). `push` is the push to the default branch.
 */
export function webhookPayload(event: "push" | "pull_request", action: string | null, repository: string): Record<string, any> {
  const all = examples.find((e) => e.name === event)!.examples;
  const found = event === "push" ? all.find((p) => p.ref === `refs/heads/${p.repository.default_branch}` && !p.deleted) : all.find((p) => p.action === action);
  if (!found) throw new Error(`no ${event} ${action ?? ""} example`);
  const [owner, name] = repository.split("/");
  return JSON.parse(JSON.stringify(found).replaceAll("Codertocat/Hello-World", repository).replaceAll('"Hello-World"', JSON.stringify(name)).replaceAll('"Codertocat"', JSON.stringify(owner)));
}

export interface ActionRun {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
}

/** Files GitHub's runner provides: the event payload, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY. */
export async function runnerFiles(payload: Record<string, any>) {
  const dir = await mkdtemp(join(tmpdir(), "stasis-runner-"));
  const files = { dir, event: join(dir, "event.json"), output: join(dir, "output"), summary: join(dir, "summary.md") };
  await writeFile(files.event, JSON.stringify(payload));
  await writeFile(files.output, "");
  await writeFile(files.summary, "");
  return files;
}

/** GITHUB_OUTPUT's `name<<delimiter` blocks, as written by @actions/core. */
export function parseOutputFile(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i]);
    if (!m) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]);
    outputs[m[1]] = value.join("\n");
  }
  return outputs;
}

export function inputEnv(inputs: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]));
}

/** `node action/dist/index.js` with the environment GitHub's runner sets. */
export async function runDist(options: { event: string; payload: Record<string, any>; inputs: Record<string, string>; env?: Record<string, string> }): Promise<ActionRun> {
  const files = await runnerFiles(options.payload);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/root",
    GITHUB_ACTIONS: "true",
    GITHUB_EVENT_NAME: options.event,
    GITHUB_EVENT_PATH: files.event,
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_WORKSPACE: REPO_ROOT,
    GITHUB_REPOSITORY: options.payload.repository?.full_name ?? "",
    GITHUB_RUN_ID: randomUUID(),
    RUNNER_TEMP: files.dir,
    ...inputEnv(options.inputs),
    ...options.env,
  };
  const child = spawn(process.execPath, [ACTION_DIST], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((r) => child.once("close", r));
  const result = { code, stdout, stderr, outputs: parseOutputFile(await readFile(files.output, "utf8")), summary: await readFile(files.summary, "utf8") };
  await rm(files.dir, { recursive: true, force: true });
  return result;
}

/** The stack, with project `hello` linked to `repository`, and that project's production API key. */
export async function startActionStackWithProject(repository: string): Promise<{ stack: ActionStack; productionKey: string }> {
  const stack = await startActionStack();
  const created = await stack.admin("POST", "/api/v1/admin/projects", { slug: "hello", repository });
  if (created.status !== 200) throw new Error(`creating the project failed: ${created.status} ${JSON.stringify(created.body)}`);
  const productionKey = (created.body.environments as Array<{ environment: string; apiKey: string }>).find((e) => e.environment === "production")!.apiKey;
  return { stack, productionKey };
}
