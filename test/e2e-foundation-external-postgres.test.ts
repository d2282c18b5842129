// The same trigger → run → output path with the control plane on Debian's PostgreSQL, reached only
// through DATABASE_URL: `stasis server` and `stasis runner` as processes; nothing embedded starts.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callStasisApi, createLayoutImageStore, deployProject } from "../builder/index.ts";
import type { RunView } from "../schemas/index.ts";
import { freePort } from "../server/index.ts";
import { startDebianPostgres, type DebianPostgres } from "./support/debian-postgres.ts";
import { processesMatching } from "./support/processes.ts";
import { CLI } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const FIXTURE = resolve(import.meta.dirname, "fixtures/basic");
const ADMIN_TOKEN = "adm_external_postgres_test_token";
const RUNNER_TOKEN = "rnr_external_postgres_test_token";
let postgres: DebianPostgres;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  postgres = await startDebianPostgres();
  dir = await mkdtemp(join(tmpdir(), "stasis-extpg-e2e-"));
  await chmod(dir, 0o755);
});

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  await postgres?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Spawns `stasis <args>` and resolves with the first JSON line it prints. */
async function daemon(args: string[], env: Record<string, string>): Promise<Record<string, unknown>> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c) => (stdout += c));
  child.stderr!.on("data", (c) => (stderr += c));
  const line = await waitFor(`stasis ${args[0]} to be ready`, () => {
    if (child.exitCode !== null) throw new Error(`stasis ${args[0]} exited ${child.exitCode}: ${stderr}`);
    return stdout.split("\n").find((l) => l.startsWith("{"));
  }, { timeoutMs: 60_000 });
  return JSON.parse(line) as Record<string, unknown>;
}

describe("on an external PostgreSQL through DATABASE_URL", () => {
  it("trigger → run → output, with nothing embedded started", async () => {
    const databaseUrl = await postgres.createDatabase("stasis_e2e");
    const port = await freePort();
    const serverDataDir = join(dir, "server-data");
    const { url } = (await daemon(["server", "--port", String(port), "--data-dir", serverDataDir, "--json"], { DATABASE_URL: databaseUrl, STASIS_ADMIN_TOKEN: ADMIN_TOKEN, STASIS_RUNNER_TOKEN: RUNNER_TOKEN, STASIS_ENCRYPTION_KEY: "0".repeat(63) + "1", STASIS_LOG_LEVEL: "warn" })) as { url: string };
    expect(existsSync(serverDataDir)).toBe(false);

    const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(url, ADMIN_TOKEN, "POST", "/api/v1/admin/projects", { slug: "basic" });
    const apiKey = created.environments.find((e) => e.environment === "production")!.apiKey;
    const deployment = await deployProject({ projectDir: FIXTURE, apiUrl: url, apiKey, store: createLayoutImageStore(join(dir, "images")), promote: true, withRuntime: false });
    await daemon(["runner", "--server-url", url, "--work-dir", join(dir, "runner"), "--image-cache", join(dir, "image-cache"), "--no-checkpoints", "--json"], { STASIS_RUNNER_TOKEN: RUNNER_TOKEN, STASIS_LOG_LEVEL: "warn" });

    const { id } = await callStasisApi<{ id: string }>(url, apiKey, "POST", "/api/v1/tasks/flaky/trigger", { payload: { succeedOn: 2 } });
    const run = await waitFor("the run to complete", async () => {
      const view = await callStasisApi<RunView>(url, apiKey, "GET", `/api/v1/runs/${id}`);
      return view.status === "COMPLETED" ? view : null;
    }, { timeoutMs: 60_000 });
    expect(run).toMatchObject({ environment: "production", version: deployment!.version, attempts: 2, output: { attempt: 2 } });

    // The rows are in Debian's server, and no embedded PostgreSQL ran anywhere under our dirs.
    const pg = (await import("pg")).default;
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const { rows } = await client.query("SELECT status FROM runs WHERE id = $1", [id]);
    await client.end();
    expect(rows).toEqual([{ status: "COMPLETED" }]);
    expect(await processesMatching(dir, "postgres")).toEqual([]);
  });
});
