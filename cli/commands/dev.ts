import { existsSync, readFileSync, watch, type FSWatcher } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import pino from "pino";
import { createLayoutImageStore, loadProjectConfigIsolated, findTaskDirs } from "../../builder/index.ts";
import { callStasisApi as apiCall } from "../../builder/index.ts";
import type { DeploymentView } from "../../schemas/index.ts";
import { DevState, isAlive } from "../api-target.ts";
import { deployProject } from "../../builder/index.ts";
import { readDotEnv } from "../dotenv.ts";
import { createRunReporter } from "../dev-run-reporter.ts";
import { startLocalStack } from "../local-stack.ts";
import { CliError, ExitCode, progress } from "../output.ts";

interface DevOptions {
  taskLogs: boolean;
  project: string;
  port: string;
  json?: boolean;
  checkpoints: boolean;
  runners: string;
  checkpointStore?: string;
  checkpointRepository?: string;
}

export function registerDevCommand(program: Command): void {
  program
    .command("dev")
    .description("run PostgreSQL, the server and a runner for this project; redeploy on every change")
    .option("--project <dir>", "the project directory", ".")
    .option("--port <port>", "API port (0: any free port)", "3030")
    .option("--runners <n>", "in-process runners", "1")
    .option("--no-checkpoints", "keep waiting runs alive instead of freezing them with CRIU")
    .option("--checkpoint-store <kind>", "dir (.stasis/checkpoints) or registry (OCI artifacts, as runners on many hosts keep them) (default STASIS_CHECKPOINT_STORE, else dir)")
    .option("--checkpoint-repository <host/repo>", "registry store: the repository (default STASIS_CHECKPOINT_REPOSITORY, else <STASIS_REGISTRY>/checkpoints)")
    .option("--no-task-logs", "do not print the tasks' own log lines")
    .option("--json", "print one JSON object when ready, then one JSON event per line")
    .action((opts: DevOptions) => runDev(opts));
}

async function runDev(opts: DevOptions): Promise<void> {
  const projectDir = resolve(opts.project);
  const emit = (event: Record<string, unknown>, human: string) => (opts.json ? process.stdout.write(`${JSON.stringify(event)}\n`) : progress(human));
  const { config } = await loadProjectConfigIsolated(projectDir);
  const stateDir = join(projectDir, ".stasis");
  await mkdir(stateDir, { recursive: true });
  const stateFile = join(stateDir, "dev.json");
  const previous = existsSync(stateFile) ? DevState.safeParse(JSON.parse(readFileSync(stateFile, "utf8"))) : null;
  const prior = previous?.success ? previous.data : null;

  if (prior?.pid && prior.pid !== process.pid && isAlive(prior.pid)) {
    throw new CliError(`stasis dev is already running for this project (pid ${prior.pid}, ${prior.apiUrl})`, ExitCode.USAGE);
  }
  if (!opts.json) progress(`stasis dev: starting ${config.project} (${projectDir})`);
  let reporter: ReturnType<typeof createRunReporter> | null = null;
  const stack = await startLocalStack({
    stateDir,
    databaseUrl: process.env.DATABASE_URL,
    port: Number(opts.port),
    adminToken: prior?.adminToken,
    runnerToken: prior?.runnerToken,
    runners: Number(opts.runners),
    // No live `stasis dev` owns this project (checked above): a database server still running here was left by a killed one.
    stopLeftoverDatabase: true,
    checkpoints: opts.checkpoints ? undefined : false,
    checkpointStore: { kind: opts.checkpointStore, repository: opts.checkpointRepository },
    taskEnv: readDotEnv(join(projectDir, ".env")),
    log: pino({ level: process.env.STASIS_LOG_LEVEL ?? "warn" }, pino.destination(2)),
    onRunnerEvent: (event) => reporter?.onRunnerEvent(event),
  });

  const watchers: FSWatcher[] = [];
  const stop = async () => {
    reporter?.stop();
    for (const watcher of watchers) watcher.close();
    await stack.stop();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop());
  process.once("SIGTERM", () => void stop());

  const apiKey = await developmentKey(stack.apiUrl, stack.adminToken, config.project, prior?.apiKey).catch(async (error: Error) => {
    await stack.stop();
    throw error;
  });
  // A one-click login for the dashboard: a one-time link (15 min) that becomes an admin session cookie.
  const login = await apiCall<{ url: string }>(stack.apiUrl, stack.adminToken, "POST", "/api/v1/admin/dashboard/login-links").catch(() => null);
  const state: DevState = { apiUrl: stack.apiUrl, apiKey, environment: "development", adminToken: stack.adminToken, runnerToken: stack.runnerToken, port: Number(new URL(stack.apiUrl).port), pid: process.pid };
  await writeFile(stateFile, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  reporter = createRunReporter({ apiUrl: stack.apiUrl, apiKey, emit, taskLogs: opts.taskLogs, dim: !opts.json && Boolean(process.stderr.isTTY) });

  const store = createLayoutImageStore(stack.dirs.images);
  // The version an earlier `stasis dev` left promoted: the same code is not deployed again.
  let current = (await apiCall<{ data: DeploymentView[] }>(stack.apiUrl, apiKey, "GET", "/api/v1/deployments")).data.find((d) => d.promoted) ?? null;
  const deploy = async (): Promise<{ deployment: DeploymentView; unchanged: boolean }> => {
    const deployed = await deployProject({ projectDir, apiUrl: stack.apiUrl, apiKey, store, promote: true, withRuntime: false, unchangedFrom: current?.contentHash, onProgress: opts.json ? undefined : (m) => progress(`  ${m}`) });
    if (deployed) current = deployed;
    return { deployment: current!, unchanged: deployed === null };
  };

  let deployment: DeploymentView;
  let unchanged: boolean;
  try {
    ({ deployment, unchanged } = await deploy());
  } catch (error) {
    await stack.stop();
    throw new CliError(`the first build failed: ${(error as Error).message}`, ExitCode.FAILURE);
  }
  const mode = stack.checkpointsMode.available ? "checkpoints on: waiting runs are frozen with CRIU" : `checkpoints off: waiting runs stay alive (${stack.checkpointsMode.reason ?? "disabled"})`;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ apiUrl: stack.apiUrl, apiKey, environment: "development", version: deployment.version, unchanged, checkpoints: stack.checkpointsMode.available, dashboardLoginUrl: login?.url ?? null })}\n`);
  } else {
    process.stdout.write(
      [
        ``,
        `  Stasis dev is running for ${config.project}`,
        `  API URL      ${stack.apiUrl}`,
        `  API key      ${apiKey}   (development)`,
        `  version      ${deployment.version}${unchanged ? " (unchanged since the last start: reused)" : ""}  tasks: ${deployment.tasks.join(", ")}`,
        `  mode         ${mode}`,
        `  dashboard    ${login ? `${login.url}   (one-click login: works once, for 15 minutes)` : `${stack.apiUrl}/ (sign in with the API key)`}`,
        ``,
        `  export STASIS_API_URL=${stack.apiUrl} STASIS_API_KEY=${apiKey}`,
        `  Ctrl-C stops everything; the next start reuses the data in .stasis/`,
        ``,
      ].join("\n"),
    );
  }

  let timer: NodeJS.Timeout | null = null;
  let building: Promise<void> = Promise.resolve();
  const dirs = await findTaskDirs(projectDir, config);
  const rebuild = () => {
    building = building.then(async () => {
      try {
        const { deployment: next, unchanged: same } = await deploy();
        if (same) emit({ type: "unchanged", version: next.version }, `unchanged: still ${next.version}`);
        else emit({ type: "deployed", version: next.version, tasks: next.tasks }, `deployed ${next.version} (${next.tasks.join(", ")})`);
      } catch (error) {
        emit({ type: "build-failed", error: (error as Error).message }, `build failed: ${(error as Error).message}`);
      }
    });
  };
  for (const dir of dirs) {
    const watcher = watch(dir, { recursive: true }, () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(rebuild, 250);
    });
    watchers.push(watcher);
  }
}

/** Reuses the key `stasis dev` saved, or creates the project (first run) or rotates its development key. */
async function developmentKey(apiUrl: string, adminToken: string, project: string, saved?: string): Promise<string> {
  if (saved) {
    const ok = await apiCall(apiUrl, saved, "GET", "/api/v1/whoami").then(() => true, () => false);
    if (ok) return saved;
  }
  const created = await apiCall<{ environments: Array<{ environment: string; apiKey: string }> }>(apiUrl, adminToken, "POST", "/api/v1/admin/projects", { slug: project });
  const key = created.environments.find((k) => k.environment === "development");
  if (key) return key.apiKey;
  const rotated = await apiCall<{ apiKey: string }>(apiUrl, adminToken, "POST", `/api/v1/admin/projects/${project}/environments/development/keys`, {});
  return rotated.apiKey;
}

