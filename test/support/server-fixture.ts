// A real server on a fresh database, driven with app.inject, plus small helpers for the runner side.
import type { BuildManifest, RetryOptions, ScheduleTrigger, WebhookTrigger } from "../../schemas/index.ts";
import { createKeyring, createServer, ensureProject, parseMasterKey, type EngineConfig, type StasisServer } from "../../server/index.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";

export const ADMIN_TOKEN = "admin-token-0123456789abcdef";
export const RUNNER_TOKEN = "runner-token-0123456789abcdef";
/** A fixed master key: a fixture restarted on the same database must unwrap what the first one wrapped (checkpoint keys). */
export const TEST_MASTER_KEY = "a".repeat(64);
/** What a runner reports with a suspend in tests that drive the runner API by hand: a digest and a key of the right shape. */
export const FAKE_SEAL = { sha256: "0".repeat(64), key: Buffer.alloc(32, 1).toString("base64") };

export interface ServerFixture {
  database: TestDatabase;
  server: StasisServer;
  keys: Record<string, string>;
  call(method: string, url: string, options?: { key?: string | null; body?: unknown }): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function startServerFixture(engine: Partial<EngineConfig> = {}, database?: TestDatabase): Promise<ServerFixture> {
  const db = database ?? (await createTestDatabase());
  const server = await createServer({ db: db.db, adminToken: ADMIN_TOKEN, runnerToken: RUNNER_TOKEN, publicUrl: "http://127.0.0.1:9999", logger: false, engine, keyring: createKeyring(parseMasterKey(TEST_MASTER_KEY)) });
  const project = await ensureProject(db.db, { slug: "demo" });
  const keys = Object.fromEntries(project.keys.map((k) => [k.environment, k.apiKey]));
  const call: ServerFixture["call"] = async (method, url, options = {}) => {
    const key = options.key === undefined ? keys.production : options.key;
    const response = await server.app.inject({
      method: method as "GET",
      url,
      headers: key ? { authorization: `Bearer ${key}` } : {},
      ...(options.body !== undefined ? { payload: options.body as object } : {}),
    });
    return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : null };
  };
  return {
    database: db,
    server,
    keys,
    call,
    async close() {
      await server.close();
      await db.drop();
    },
  };
}

export interface TaskSpec {
  id: string;
  retry?: Partial<RetryOptions>;
  maxDuration?: number;
  webhook?: WebhookTrigger;
  schedule?: ScheduleTrigger;
}

export function manifest(tasks: Array<string | TaskSpec>, project = "demo"): BuildManifest {
  return {
    schemaVersion: 1,
    project,
    entry: "index.mjs",
    tasks: tasks.map((t) => {
      const spec = typeof t === "string" ? { id: t } : t;
      return {
        id: spec.id,
        filePath: `trigger/${spec.id}.ts`,
        exportName: spec.id,
        retry: { maxAttempts: 3, factor: 2, minTimeoutInMs: 1000, maxTimeoutInMs: 60_000, randomize: false, ...spec.retry },
        machine: { preset: "small-1x", cpu: 0.5, memory: 512 },
        queue: { name: spec.id },
        ...(spec.maxDuration ? { maxDuration: spec.maxDuration } : {}),
        ...(spec.webhook ? { webhook: spec.webhook } : {}),
        ...(spec.schedule ? { schedule: spec.schedule } : {}),
      };
    }),
    externals: [],
    sdkVersion: "0.1.0",
    nodeVersion: "20.0.0",
    contentHash: "0".repeat(64),
  };
}

export const DIGEST = `sha256:${"a".repeat(64)}`;

export async function deploy(f: ServerFixture, tasks: Array<string | TaskSpec>, options: { key?: string; promote?: boolean } = {}) {
  const res = await f.call("POST", "/api/v1/deployments", {
    key: options.key,
    body: { imageRef: `oci-layout:/tmp/x@${DIGEST}`, imageDigest: DIGEST, manifest: manifest(tasks), promote: options.promote ?? true },
  });
  if (res.status !== 200) throw new Error(`deploy failed: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function registerRunner(f: ServerFixture, name = "r1"): Promise<string> {
  const res = await f.call("POST", "/api/v1/runner/register", { key: RUNNER_TOKEN, body: { name, capacity: 4, checkpoints: true } });
  if (res.status !== 200) throw new Error(`register failed: ${JSON.stringify(res.body)}`);
  return res.body.runnerId;
}

export async function poll(f: ServerFixture, runnerId: string, options: { freeSlots?: number; waitMs?: number } = {}) {
  const res = await f.call("POST", "/api/v1/runner/poll", { key: RUNNER_TOKEN, body: { runnerId, freeSlots: options.freeSlots ?? 4, waitMs: options.waitMs ?? 0 } });
  if (res.status !== 200) throw new Error(`poll failed: ${JSON.stringify(res.body)}`);
  return res.body as { runs: any[]; continues: any[]; stops: any[]; deleteCheckpoints?: string[] };
}

/** Polls until `check` passes or the deadline; no fixed sleeps. */
export async function eventually<T>(fn: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
