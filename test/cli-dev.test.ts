// `stasis dev` in a copy of a fixture project: embedded PostgreSQL under .stasis/, server and runner in
// one process tree; --json prints the ready line, redeploys on a change, Ctrl-C stops everything,
// and the next start reuses the data.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { appendFile, chmod, cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunView } from "../schemas/index.ts";
import { processesMatching, taskProcesses } from "./support/processes.ts";
import { CLI } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const FIXTURE = resolve(import.meta.dirname, "fixtures/basic");
let project: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), "stasis-dev-"));
  await chmod(project, 0o755); // PostgreSQL runs as the postgres user and must reach .stasis/pg
  await cp(FIXTURE, project, { recursive: true });
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  if (project) await rm(project, { recursive: true, force: true });
});

interface Ready {
  unchanged?: boolean;
  dashboardLoginUrl: string;
  apiUrl: string;
  apiKey: string;
  environment: string;
  version: string;
}

interface DevProcess {
  child: ChildProcess;
  ready: Ready;
  /** Parsed stdout lines after the ready line. */
  events: Array<Record<string, unknown>>;
  stderr(): string;
  interrupt(): Promise<number | null>;
}

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ["DATABASE_URL", "STASIS_API_URL", "STASIS_API_KEY"]) delete env[name];
  return env;
}

async function startDev(): Promise<DevProcess> {
  const child = spawn(process.execPath, [CLI, "dev", "--json", "--port", "0", "--no-checkpoints"], { cwd: project, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const lines: string[] = [];
  let buffer = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop()!;
    lines.push(...parts.filter(Boolean));
  });
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  await waitFor("stasis dev to print its ready line", () => {
    if (child.exitCode !== null) throw new Error(`stasis dev exited ${child.exitCode}: ${stderr}`);
    return lines.length > 0;
  }, { timeoutMs: 90_000 });
  const ready = JSON.parse(lines[0]) as Ready;
  const dev: DevProcess = {
    child,
    ready,
    get events() {
      return lines.slice(1).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    stderr: () => stderr,
    async interrupt() {
      child.kill("SIGINT");
      return await exited;
    },
  };
  return dev;
}

async function api<T>(dev: DevProcess, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${dev.ready.apiUrl}${path}`, { method, headers: { authorization: `Bearer ${dev.ready.apiKey}`, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

async function runToEnd(dev: DevProcess, task: string, payload: unknown): Promise<RunView> {
  const { id } = await api<{ id: string }>(dev, "POST", `/api/v1/tasks/${task}/trigger`, { payload });
  return await waitFor(`run ${id} to finish`, async () => {
    const run = await api<RunView>(dev, "GET", `/api/v1/runs/${id}`);
    return ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT"].includes(run.status) ? run : null;
  }, { timeoutMs: 30_000 });
}

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => execFile(process.execPath, [CLI, ...args], { cwd: project, env: childEnv() }, (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr })));
}

describe("stasis dev", () => {
  let firstRun: RunView;

  it("starts, runs tasks, redeploys on a change, and stops everything on Ctrl-C", async () => {
    const dev = await startDev();
    expect(dev.ready).toMatchObject({ apiUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), apiKey: expect.stringMatching(/^sk_development_/), environment: "development", version: expect.stringMatching(/^\d{8}\.1$/) });
    // The one-click dashboard link: the page it opens posts its one-time token for an admin session.
    expect(dev.ready.dashboardLoginUrl).toMatch(new RegExp(`^${dev.ready.apiUrl}/login\\?token=lt_`));
    const token = new URL(dev.ready.dashboardLoginUrl).searchParams.get("token");
    const login = await fetch(`${dev.ready.apiUrl}/api/v1/dashboard/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token }) });
    expect(login.status).toBe(200);
    expect(((await login.json()) as { kind: string }).kind).toBe("admin");

    firstRun = await runToEnd(dev, "hello", { name: "dev" });
    expect(firstRun).toMatchObject({ status: "COMPLETED", version: dev.ready.version, output: { greeting: "Hello, dev!" } });

    // The dev terminal shows each run's own log lines and how each attempt ended.
    await waitFor("the run's log line and its end in dev's output", () =>
      dev.events.some((e) => e.type === "run.log" && e.runId === firstRun.id && e.message === "hello dev") && dev.events.some((e) => e.type === "run.completed" && e.runId === firstRun.id),
    );
    const flaky = await runToEnd(dev, "flaky", { succeedOn: 2 });
    expect(flaky).toMatchObject({ status: "COMPLETED", attempts: 2 });
    const retrying = await waitFor("a run.retrying event", () => dev.events.find((e) => e.type === "run.retrying" && e.runId === flaky.id));
    expect(retrying).toMatchObject({ attempt: 1, error: { name: "TypeError", message: "attempt 1 is not enough" } });

    // Other commands find the running dev of this project without any environment variables.
    const listed = await cli(["runs", "list", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { data: RunView[] }).data.map((r) => r.id)).toContain(firstRun.id);

    const taskFile = join(project, "trigger", "basic.ts");
    await writeFile(taskFile, (await readFile(taskFile, "utf8")).replace("Hello, ${payload.name}!", "Hi again, ${payload.name}!"));
    await appendFile(taskFile, '\nexport const added = task({ id: "added", run: async () => "new task" });\n');
    const deployed = await waitFor("a deployed event", () => dev.events.find((e) => e.type === "deployed"), { timeoutMs: 60_000 });
    expect(deployed.version).toMatch(/^\d{8}\.2$/);
    expect(deployed.tasks).toContain("added");
    const after = await runToEnd(dev, "hello", { name: "dev" });
    expect(after).toMatchObject({ version: deployed.version, output: { greeting: "Hi again, dev!" } });
    expect(await runToEnd(dev, "added", null)).toMatchObject({ status: "COMPLETED", output: "new task" });

    expect(await dev.interrupt()).toBe(0);
    const pgDir = join(project, ".stasis", "pg");
    await waitFor("no PostgreSQL left running from the project's data dir", async () => (await processesMatching(pgDir)).length === 0, { timeoutMs: 15_000 });
    await waitFor("no task process left", async () => (await taskProcesses(project)).length === 0, { timeoutMs: 10_000 });
  });

  it("a second start reuses the data: earlier runs are still there", async () => {
    const dev = await startDev();
    const runs = await api<{ data: RunView[] }>(dev, "GET", "/api/v1/runs?limit=50");
    expect(runs.data.map((r) => r.id)).toContain(firstRun.id);
    // Nothing changed since the last start: the promoted version is reused, not deployed again.
    expect(dev.ready).toMatchObject({ version: expect.stringMatching(/^\d{8}\.2$/), unchanged: true });

    // A second `stasis dev` for the same project is refused while this one runs.
    const second = await cli(["dev", "--port", "0"]);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`already running for this project (pid ${dev.child.pid}`);

    expect(await dev.interrupt()).toBe(0);
    await waitFor("PostgreSQL to stop again", async () => (await processesMatching(join(project, ".stasis", "pg"))).length === 0, { timeoutMs: 15_000 });
  });

  it("a taken port exits 2 at once, names the port and its holder, and leaves nothing running", async () => {
    const holder = createServer();
    await new Promise<void>((done) => holder.listen(0, "127.0.0.1", done));
    const port = (holder.address() as { port: number }).port;
    try {
      const started = Date.now();
      const result = await cli(["dev", "--port", String(port), "--no-checkpoints"]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(`port ${port} on 127.0.0.1 is already in use by pid ${process.pid}`);
      expect(result.stderr).toContain("--port");
      expect(result.stderr).not.toMatch(/^\s+at /m); // one line, no stack
      expect(Date.now() - started).toBeLessThan(60_000); // it exited by itself (it used to hang until Ctrl-C)
      await waitFor("no PostgreSQL left running from the project's data dir", async () => (await processesMatching(join(project, ".stasis", "pg"))).length === 0, { timeoutMs: 15_000 });
    } finally {
      holder.close();
    }
  });

  it("starts again after being killed with SIGKILL: the database it left running is stopped and reused", async () => {
    const killed = await startDev();
    killed.child.kill("SIGKILL");
    await new Promise((resolve) => killed.child.once("exit", resolve));
    expect((await processesMatching(join(project, ".stasis", "pg"))).length).toBeGreaterThan(0); // orphaned by the kill

    const dev = await startDev();
    const runs = await api<{ data: RunView[] }>(dev, "GET", "/api/v1/runs?limit=50");
    expect(runs.data.map((r) => r.id)).toContain(firstRun.id);
    expect(await dev.interrupt()).toBe(0);
    await waitFor("PostgreSQL to stop", async () => (await processesMatching(join(project, ".stasis", "pg"))).length === 0, { timeoutMs: 15_000 });
  });
});
