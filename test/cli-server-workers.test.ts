// `stasis server --workers 2` as an operator runs it: two server processes share one port and one
// database. Both answer requests; a run triggered through the port is claimed and completed through
// it; a worker killed with SIGKILL is replaced while the other keeps serving; SIGTERM stops them all.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pidRunning } from "../runner/workload/pid-alive.ts";
import { ensureProject, freePort } from "../server/index.ts";
import { runCli } from "./support/cli.ts";
import { createTestDatabase, type TestDatabase } from "./support/db.ts";
import { ADMIN_TOKEN, deploy, poll, registerRunner, RUNNER_TOKEN, TEST_MASTER_KEY, type ServerFixture } from "./support/server-fixture.ts";
import { CLI } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let database: TestDatabase;
let primary: ChildProcess | null = null;
let stdout = "";
let stderr = "";
const env = () => ({ ...process.env, DATABASE_URL: database.url, STASIS_ADMIN_TOKEN: ADMIN_TOKEN, STASIS_RUNNER_TOKEN: RUNNER_TOKEN, STASIS_ENCRYPTION_KEY: TEST_MASTER_KEY, STASIS_LOG_LEVEL: "info" });

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  if (primary && primary.exitCode === null && primary.signalCode === null) primary.kill("SIGKILL");
  await database?.drop();
});

const childrenOf = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

/** PIDs of the processes that logged a completed request (each worker's own log lines carry its pid). */
const servedBy = () => new Set(stdout.split("\n").filter((l) => l.includes('"request completed"')).map((l) => (JSON.parse(l) as { pid: number }).pid));

describe("stasis server --workers", () => {
  it("refuses a count that is not a whole number ≥ 1, naming the option", async () => {
    const result = await runCli(["server", "--workers", "0"], { cwd: process.cwd(), env: env() });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--workers must be a whole number >= 1 or auto");
  });

  it("exits with the usage code when the port is taken, saying which process holds it", async () => {
    const holder = createNetServer();
    const port = await new Promise<number>((resolve) => holder.listen(0, "127.0.0.1", () => resolve((holder.address() as { port: number }).port)));
    try {
      const result = await runCli(["server", "--workers", "2", "--port", String(port)], { cwd: process.cwd(), env: env() });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(new RegExp(`port ${port}`));
      expect(result.stderr).toContain("a server worker exited before it listened");
    } finally {
      holder.close();
    }
  });

  it("serves one port from two processes, replaces a killed one, and stops them all on SIGTERM", async () => {
    const port = await freePort();
    primary = spawn(process.execPath, [CLI, "server", "--workers", "2", "--port", String(port), "--json"], { env: env(), stdio: ["ignore", "pipe", "pipe"] });
    primary.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    primary.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const ready = await waitFor("the primary's {url} line", () => stdout.split("\n").find((l) => l.startsWith('{"url"')), { timeoutMs: 90_000 });
    const { url, workers } = JSON.parse(ready) as { url: string; workers: number };
    expect(workers).toBe(2);
    const first = childrenOf(primary.pid!);
    expect(first).toHaveLength(2);

    const project = await ensureProject(database.db, { slug: "demo" });
    const key = project.keys.find((k) => k.environment === "production")!.apiKey;
    const f: ServerFixture = {
      database,
      server: null as never,
      keys: { production: key },
      close: async () => {},
      call: async (method, path, options = {}) => {
        const auth = options.key === undefined ? key : options.key;
        // A new connection per request: the primary deals connections to the workers in turn.
        const response = await fetch(`${url}${path}`, { method, signal: AbortSignal.timeout(15_000), headers: { connection: "close", ...(auth ? { authorization: `Bearer ${auth}` } : {}), ...(options.body !== undefined ? { "content-type": "application/json" } : {}) }, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
        const text = await response.text();
        return { status: response.status, body: text ? JSON.parse(text) : null };
      },
    };

    await deploy(f, ["hello"]);
    const runnerId = await registerRunner(f);
    const triggered = await f.call("POST", "/api/v1/tasks/hello/trigger", { body: { payload: { n: 1 } } });
    expect(triggered.status).toBe(200);
    const claimed = await waitFor("the run's claim", async () => (await poll(f, runnerId, { waitMs: 2000 })).runs[0]);
    expect(claimed.runId).toBe(triggered.body.id);
    const completed = await f.call("POST", `/api/v1/runner/runs/${claimed.runId}/complete`, { key: RUNNER_TOKEN, body: { leaseId: claimed.leaseId, result: { ok: true, output: "done" } } });
    expect(completed.status).toBe(200);
    expect((await f.call("GET", `/api/v1/runs/${claimed.runId}`)).body).toMatchObject({ status: "COMPLETED", output: "done" });
    await waitFor("both workers answering requests", async () => {
      await f.call("GET", "/healthz", { key: null });
      return first.every((pid) => servedBy().has(pid)) || undefined;
    });

    // One worker dies: once the primary knows, the other answers every request, and a replacement
    // starts and serves too. (A connection the primary hands over in the moment between the death
    // and its notice is lost with the worker: node:cluster's round robin, documented in deploy/.)
    process.kill(first[0], "SIGKILL");
    await waitFor("the primary noticing the death", () => stderr.includes(`worker ${first[0]} exited (SIGKILL); starting another`) || undefined);
    for (let i = 0; i < 4; i++) expect((await f.call("GET", "/healthz", { key: null })).status).toBe(200);
    const replacement = await waitFor("a replacement worker", () => childrenOf(primary!.pid!).find((pid) => !first.includes(pid)));
    await waitFor("the replacement answering requests", async () => {
      await f.call("GET", "/healthz", { key: null });
      return servedBy().has(replacement) || undefined;
    }, { timeoutMs: 60_000 });

    const workersNow = childrenOf(primary.pid!);
    const exited = new Promise<number | null>((resolve) => primary!.once("exit", (code) => resolve(code)));
    primary.kill("SIGTERM");
    expect(await exited).toBe(0);
    const stillRunning = await Promise.all(workersNow.map(pidRunning));
    expect(workersNow.filter((_, i) => stillRunning[i])).toEqual([]);
  });
});
