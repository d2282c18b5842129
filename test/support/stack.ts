// The whole platform for an end-to-end test: a fresh database, the server, runners (in-process or
// as real `stasis runner` processes), a project with its keys, and deploys of fixture projects.
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createLayoutImageStore, deployProject, callStasisApi, type ImageStore } from "../../builder/index.ts";
import { startLocalStack, type LocalStack, type LocalStackOptions } from "../../cli/local-stack.ts";
import type { DeploymentView, RunView } from "../../schemas/index.ts";
import { createTestDatabase, type TestDatabase } from "./db.ts";
import { waitFor } from "./wait-for.ts";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");
export const CLI = join(REPO_ROOT, "cli/bin.mjs");

/**
 * Runner processes of a test stack share this dir with their task processes (STASIS_TASK_SHARED_DIRS):
 * tasks run as their environment's own user and see nothing else of the host's /tmp.
 */
export const TASK_SHARED_ROOT = join(tmpdir(), "stasis-task-shared");

/** A scratch dir tasks can use (ledgers, gates, O_APPEND logs): under TASK_SHARED_ROOT, writable by any task user. */
export async function taskScratchDir(prefix: string): Promise<string> {
  await mkdir(TASK_SHARED_ROOT, { recursive: true });
  await chmod(TASK_SHARED_ROOT, 0o1777);
  const dir = await mkdtemp(join(TASK_SHARED_ROOT, prefix));
  await chmod(dir, 0o777);
  return dir;
}

export interface RunnerProcess {
  runnerId: string;
  child: ChildProcess;
  /** Everything the runner printed on stderr so far (its pino log). */
  log(): string;
  /** SIGTERM: drain and exit. */
  stop(): Promise<void>;
  /** SIGKILL, like a machine dying. */
  kill9(): Promise<void>;
}

export interface TestStack {
  local: LocalStack;
  database: TestDatabase;
  stateDir: string;
  apiUrl: string;
  /** API keys of the project's environments (production, staging, development). */
  keys: Record<string, string>;
  project: string;
  /** Builds and deploys a project (to the stack's OCI layout dir unless `store` is given). */
  deploy(projectDir: string, options?: { environment?: string; promote?: boolean; store?: ImageStore; withRuntime?: boolean }): Promise<DeploymentView>;
  /** Call the public API as an environment (default development). */
  api<T>(method: string, path: string, body?: unknown, environment?: string): Promise<T>;
  waitForRun(id: string, predicate: (run: RunView) => boolean, what: string, timeoutMs?: number): Promise<RunView>;
  /**
   * `env`: the runner's own environment; `taskEnv`: what its task processes get (through `--env-file`);
   * `warmProcesses`: `--warm-processes` (default 0, see TestStackOptions; "default": the flag left out).
   */
  startRunnerProcess(options?: { capacity?: number; warmProcesses?: number | "default"; checkpoints?: boolean; env?: Record<string, string>; taskEnv?: Record<string, string>; name?: string; suspendThresholdMs?: number; workload?: "process" | "runc" | "container"; serverUrl?: string; drainGraceMs?: number; drainFinishMs?: number; args?: string[] }): Promise<RunnerProcess>;
  stop(): Promise<void>;
}

/**
 * `warmProcesses` defaults to 0 here (the runner keeps spares by default): most tests count a run's task
 * processes, and a spare started beside each run would double the suite's Node starts. The spares
 * themselves are tested in e2e-warm-spares.test.ts, with the runner's default.
 */
export interface TestStackOptions extends Partial<Omit<LocalStackOptions, "stateDir" | "databaseUrl">> {
  project?: string;
}

export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  const stateDir = await mkdtemp(join(tmpdir(), "stasis-e2e-"));
  const database = await createTestDatabase();
  const local = await startLocalStack({ runners: 0, warmProcesses: 0, ...options, stateDir, databaseUrl: database.url });
  const project = options.project ?? "e2e";
  const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(local.apiUrl, local.adminToken, "POST", "/api/v1/admin/projects", { slug: project });
  const keys = Object.fromEntries(created.environments.map((e) => [e.environment, e.apiKey]));
  const runnerProcesses: RunnerProcess[] = [];
  const store = createLayoutImageStore(local.dirs.images);

  const stack: TestStack = {
    local,
    database,
    stateDir,
    apiUrl: local.apiUrl,
    keys,
    project,
    async deploy(projectDir, deployOptions = {}) {
      const deployment = await deployProject({
        projectDir,
        apiUrl: local.apiUrl,
        apiKey: keys[deployOptions.environment ?? "development"],
        store: deployOptions.store ?? store,
        promote: deployOptions.promote ?? true,
        withRuntime: deployOptions.withRuntime ?? false,
      });
      return deployment!;
    },
    api(method, path, body, environment = "development") {
      return callStasisApi(local.apiUrl, keys[environment], method, path, body);
    },
    waitForRun(id, predicate, what, timeoutMs = 60_000) {
      return waitFor(what, async () => {
        const run = await stack.api<RunView>("GET", `/api/v1/runs/${id}`);
        return predicate(run) ? run : null;
      }, { timeoutMs });
    },
    async startRunnerProcess(runnerOptions = {}) {
      const n = runnerProcesses.length + 1;
      const args = [CLI, "runner", "--server-url", runnerOptions.serverUrl ?? local.apiUrl, "--name", runnerOptions.name ?? `proc-${n}`, "--capacity", String(runnerOptions.capacity ?? 5), "--work-dir", join(stateDir, `runner-${n}`), "--image-cache", local.dirs.imageCache, "--checkpoint-dir", local.dirs.checkpoints, "--drain-grace", String(runnerOptions.drainGraceMs ?? 2000), "--json"];
      if (runnerOptions.warmProcesses !== "default") args.push("--warm-processes", String(runnerOptions.warmProcesses ?? 0));
      if (runnerOptions.checkpoints === false) args.push("--no-checkpoints");
      if (runnerOptions.drainFinishMs !== undefined) args.push("--drain-finish", String(runnerOptions.drainFinishMs));
      if (runnerOptions.workload) args.push("--workload", runnerOptions.workload);
      if (runnerOptions.args) args.push(...runnerOptions.args);
      if (runnerOptions.suspendThresholdMs !== undefined) args.push("--suspend-threshold", String(runnerOptions.suspendThresholdMs));
      if (runnerOptions.taskEnv) {
        const envFile = join(stateDir, `runner-${n}.env`);
        await writeFile(envFile, Object.entries(runnerOptions.taskEnv).map(([k, v]) => `${k}=${v}\n`).join(""));
        args.push("--env-file", envFile);
      }
      await mkdir(TASK_SHARED_ROOT, { recursive: true });
      const child = spawn(process.execPath, args, { env: { ...process.env, STASIS_RUNNER_TOKEN: local.runnerToken, STASIS_LOG_LEVEL: "info", STASIS_TASK_SHARED_DIRS: TASK_SHARED_ROOT, ...runnerOptions.env }, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout!.on("data", (chunk) => (stdout += chunk));
      child.stderr!.on("data", (chunk) => (stderr += chunk));
      const exited = new Promise<void>((resolveExit) => child.once("exit", () => resolveExit()));
      const line = await waitFor(`runner process ${n} to register`, () => {
        if (child.exitCode !== null) throw new Error(`runner exited early: ${stderr}`);
        return stdout.split("\n").find((l) => l.startsWith("{"));
      }, { timeoutMs: 90_000 });
      const runner: RunnerProcess = {
        runnerId: JSON.parse(line).runnerId,
        child,
        log: () => stderr,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          await exited;
        },
        async kill9() {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
          await exited;
        },
      };
      runnerProcesses.push(runner);
      return runner;
    },
    async stop() {
      await Promise.all(runnerProcesses.map((r) => r.kill9()));
      await local.stop();
      await database.drop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
  return stack;
}
