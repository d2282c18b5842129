import { join, resolve } from "node:path";
import type { Command } from "commander";
import pino from "pino";
import { allowedImageSources } from "../../schemas/index.ts";
// The runner and the server are imported by their command's action: a runner never loads the server.
import type { OpenedCheckpointStore, TaskSandboxPolicy } from "../../runner/index.ts";
import { listenOn } from "../listen.ts";
import { CliError, ExitCode, printResult, progress } from "../output.ts";
import { readDotEnv } from "../dotenv.ts";
import { isServerWorker, parseWorkers, startServerWorkers } from "../server-workers.ts";

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new CliError(`${name} is not set`, ExitCode.USAGE);
  return value;
}

export function registerServeCommands(program: Command): void {
  program
    .command("server")
    .description("run the control plane (DATABASE_URL, or an embedded PostgreSQL in --data-dir)")
    .option("--host <host>", "listen address", "127.0.0.1")
    .option("--port <port>", "listen port", "3030")
    .option("--data-dir <dir>", "embedded PostgreSQL data dir when DATABASE_URL is not set", ".stasis/server")
    .option("--workers <n>", "server processes sharing the port (node:cluster), each with its own event loop and database pool: more triggers and claims per second where there are cores to spare (a run may start a NOTIFY later when its trigger and the runner's poll reach two workers); auto: one per CPU", "1")
    .option("--json", "print {\"url\"} when listening")
    .action(async (opts: { host: string; port: string; dataDir: string; workers: string; json?: boolean }) => {
      const { connectDatabase, createServer, EncryptionKeyError, keyringFromEnv, migrate, startEmbeddedPostgres } = await import("../../server/index.ts");
      const workers = parseWorkers(opts.workers);
      const worker = isServerWorker();
      // The channel to the primary must not keep a worker that failed to start alive: its server keeps it alive.
      if (worker) process.channel?.unref();
      const adminToken = requireEnv("STASIS_ADMIN_TOKEN");
      const runnerToken = requireEnv("STASIS_RUNNER_TOKEN");
      // Required: environment variables are encrypted under it (`stasis dev` generates its own).
      if (!process.env.STASIS_ENCRYPTION_KEY) {
        throw new CliError("STASIS_ENCRYPTION_KEY is not set: the server encrypts environment variables under it (32 random bytes, base64 or hex: `openssl rand -base64 32`); keep it safe, a lost key loses every variable", ExitCode.USAGE);
      }
      let keyring;
      try {
        keyring = keyringFromEnv();
      } catch (error) {
        throw new CliError((error as Error).message, ExitCode.USAGE);
      }
      // A worker gets the primary's DATABASE_URL (the embedded PostgreSQL's too), migrated already.
      const embedded = process.env.DATABASE_URL ? null : await startEmbeddedPostgres({ dataDir: resolve(opts.dataDir, "pg") });
      const databaseUrl = process.env.DATABASE_URL ?? embedded!.url;
      const db = connectDatabase(databaseUrl);
      if (!worker) await migrate(db);
      const url = process.env.STASIS_PUBLIC_URL ?? `http://${opts.host}:${opts.port}`;
      if (workers > 1 && !worker) {
        await db.destroy();
        const pool = startServerWorkers(workers, { DATABASE_URL: databaseUrl });
        let stopping: Promise<void> | null = null;
        const stop = () =>
          (stopping ??= (async () => {
            await pool.stop();
            await embedded?.stop();
            process.exit(0);
          })());
        process.once("SIGINT", () => void stop());
        process.once("SIGTERM", () => void stop());
        try {
          await pool.listening;
        } catch (error) {
          await pool.stop();
          await embedded?.stop();
          throw error;
        }
        printResult(Boolean(opts.json), { url, workers }, () => `stasis server listening on ${url} (${workers} worker processes)`);
        return;
      }
      const server = await createServer({ db, adminToken, runnerToken, publicUrl: url, logger: { level: process.env.STASIS_LOG_LEVEL ?? "info" }, keyring }).catch(async (error: unknown) => {
        await db.destroy();
        await embedded?.stop();
        throw error instanceof EncryptionKeyError ? new CliError(error.message, ExitCode.USAGE) : error;
      });
      try {
        await listenOn(server.app, opts.host, Number(opts.port));
      } catch (error) {
        await server.close();
        await db.destroy();
        await embedded?.stop();
        throw error;
      }
      if (!worker) printResult(Boolean(opts.json), { url }, () => `stasis server listening on ${url}`);
      const stop = async () => {
        await server.close();
        await db.destroy();
        await embedded?.stop();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop());
      process.once("SIGTERM", () => void stop());
    });

  program
    .command("runner")
    .description("run a runner daemon: claims runs from the server and executes them")
    .option("--server-url <url>", "the server (default STASIS_SERVER_URL)")
    .option("--name <name>", "runner name")
    .option("--capacity <n>", "concurrent runs", "10")
    .option("--work-dir <dir>", "scratch space", ".stasis/runner")
    .option("--image-cache <dir>", "image cache shared by the runners of this host", ".stasis/image-cache")
    .option("--checkpoint-store <kind>", "where checkpoints go: dir (a directory; one host, or one shared by all runners) or registry (OCI artifacts in a registry; hosts share nothing else) (default STASIS_CHECKPOINT_STORE, else dir)")
    .option("--checkpoint-dir <dir>", "dir store: the directory (default STASIS_CHECKPOINT_DIR, else <work dir>/checkpoints)")
    .option("--checkpoint-repository <host/repo>", "registry store: the repository (default STASIS_CHECKPOINT_REPOSITORY, else <STASIS_REGISTRY>/checkpoints); credentials are the registry's (STASIS_REGISTRY_USERNAME/PASSWORD or STASIS_REGISTRY_TOKEN), for their own host only")
    .option("--no-checkpoints", "never freeze waiting runs")
    .option("--warm-processes <n>", "the most started, never-used task processes kept per recent deployment (up to 4 deployments), so a run skips Node's start-up: one at first, more while runs come faster than one boots (at most n and the free slots), back to one after a minute unused; slots: up to the free slots; 0: none", "slots")
    .option("--workload <kind>", "process: the bundle with this host's Node in a PID namespace; runc: the image's own rootfs under runc with the task's machine limits; container: the image in a container of the host's Podman (its API socket, see --container-socket), with the task's machine limits", "process")
    .option("--container-socket <path>", "container workload: the engine's API socket, Podman's or Docker's (default /run/podman/podman.sock, else /var/run/docker.sock; on Docker, checkpoints need dockerd --experimental)")
    .option("--suspend-threshold <ms>", "waits shorter than this stay in-process (default: the server's setting, else 5000)")
    .option("--keep-stopped <MiB>", "how much memory the runner may hold in processes of suspended runs, each kept stopped after its dump for up to a minute, so that a resume here continues the process instead of restoring it (default 0: none; counted by dump size; process workload only)", "0")
    .option("--local-checkpoints <MiB>", "how much of its own dumps the runner keeps unencrypted in its work dir (0700), so a resume here skips fetching and unpacking the sealed checkpoint (default 0: none; the dump holds the task's memory, secrets included, while the run waits)", "0")
    .option("--env-file <file>", "host-wide default environment for task processes (each environment's own variables, kept by the server, win over it)")
    .option("--allowed-registries <list>", "where images may come from: host[:port][/prefix], oci-layout:<dir> or oci-layout:*, comma-separated (default STASIS_ALLOWED_REGISTRIES, else STASIS_REGISTRY and local layout dirs)")
    .option("--task-uid-base <n>", "task processes of environment N run as uid base+N (default STASIS_TASK_UID_BASE, else 1000000000); as root only")
    .option("--task-shared-dirs <list>", "host dirs every task process may use, read-write at the same path, `:`-separated (default STASIS_TASK_SHARED_DIRS)")
    .option("--drain-grace <ms>", "on SIGTERM, how long the drain may take: runs may finish, then (with checkpoints) each one still here is checkpointed and handed over to resume on another runner where it was; what is left at the end is given back", "30000")
    .option("--drain-finish <ms>", "on SIGTERM, how long runs may finish before the rest are checkpointed and handed over (default: half of --drain-grace)")
    .option("--health-port <port>", "serve /livez, /readyz and /drain (a preStop hook) on this port (default STASIS_RUNNER_HEALTH_PORT; off when unset)")
    .option("--json", "print {\"runnerId\"} when registered")
    .action(async (opts: { serverUrl?: string; name?: string; capacity: string; workDir: string; imageCache: string; checkpointStore?: string; checkpointDir?: string; checkpointRepository?: string; checkpoints: boolean; workload: string; containerSocket?: string; suspendThreshold?: string; localCheckpoints: string; keepStopped: string; envFile?: string; drainGrace: string; drainFinish?: string; healthPort?: string; warmProcesses: string; allowedRegistries?: string; taskUidBase?: string; taskSharedDirs?: string; json?: boolean }) => {
      const { canSandboxTasks, openCheckpointStore, startHealthServer, createImageCache, createProcessRuntime, createRuncRuntime, createContainerRuntime, createRunner, DEFAULT_TASK_UID_BASE, pathList } = await import("../../runner/index.ts");
      if (opts.workload !== "process" && opts.workload !== "runc" && opts.workload !== "container") throw new CliError(`--workload must be process, runc or container, not ${JSON.stringify(opts.workload)}`, ExitCode.USAGE);
      const workload = opts.workload;
      const localCheckpointBytes = mibToBytes("--local-checkpoints", opts.localCheckpoints);
      const keepStoppedBytes = mibToBytes("--keep-stopped", opts.keepStopped);
      if (keepStoppedBytes > 0 && workload !== "process") throw new CliError(`--keep-stopped needs --workload process (a ${workload} runner restores every resume from its checkpoint)`, ExitCode.USAGE);
      const warmProcesses = opts.warmProcesses === "slots" ? "slots" : Number(opts.warmProcesses);
      if (warmProcesses !== "slots" && !(Number.isSafeInteger(warmProcesses) && warmProcesses >= 0)) throw new CliError(`--warm-processes must be a whole number >= 0 or slots, not ${JSON.stringify(opts.warmProcesses)}`, ExitCode.USAGE);
      const serverUrl = opts.serverUrl ?? requireEnv("STASIS_SERVER_URL");
      const runnerToken = requireEnv("STASIS_RUNNER_TOKEN");
      const workDir = resolve(opts.workDir);
      const log = pino({ level: process.env.STASIS_LOG_LEVEL ?? "info" }, pino.destination(2));
      const runtimeOptions = { checkpoints: opts.checkpoints ? undefined : false, workDir };
      const runtime =
        workload === "runc" ? await createRuncRuntime({ ...runtimeOptions, workDir: join(workDir, "runc") })
        : workload === "container" ? await createContainerRuntime({ ...runtimeOptions, workDir: join(workDir, "container"), socketPath: opts.containerSocket })
        : await createProcessRuntime(runtimeOptions);
      let allowedSources;
      try {
        allowedSources = allowedImageSources(opts.allowedRegistries ?? process.env.STASIS_ALLOWED_REGISTRIES, process.env.STASIS_REGISTRY);
      } catch (error) {
        throw new CliError(`--allowed-registries: ${(error as Error).message}`, ExitCode.USAGE);
      }
      const images = createImageCache(resolve(opts.imageCache), { allowedSources });
      let checkpointStore: OpenedCheckpointStore | null = null;
      try {
        if (opts.checkpoints) checkpointStore = openCheckpointStore({ kind: opts.checkpointStore, dir: opts.checkpointDir, repository: opts.checkpointRepository, defaultDir: join(workDir, "checkpoints") });
      } catch (error) {
        throw new CliError(`--checkpoint-store: ${(error as Error).message}`, ExitCode.USAGE);
      }
      if (checkpointStore) log.info({ store: checkpointStore.kind, where: checkpointStore.where }, "checkpoint store");
      if (!runtime.checkpoints.available) log.warn({ reason: runtime.checkpoints.reason }, "checkpoints are off: runs stay alive while they wait");
      const uidBaseText = opts.taskUidBase ?? process.env.STASIS_TASK_UID_BASE;
      const uidBase = uidBaseText === undefined ? DEFAULT_TASK_UID_BASE : Number(uidBaseText);
      if (!Number.isSafeInteger(uidBase) || uidBase < 1000) throw new CliError(`--task-uid-base must be a whole number >= 1000, not ${JSON.stringify(uidBaseText)}`, ExitCode.USAGE);
      // Tasks never see the runner's own dirs (work dir, checkpoint store, image cache) nor STASIS_TASK_HIDE_PATHS:
      // a process task's root is built from nothing (runner/workload/task-root.sh), a runc task's is its image.
      // auto (the default) = on wherever the runner is root; off: tasks run as root with the host's files.
      const sandboxMode = process.env.STASIS_TASK_SANDBOX ?? "auto";
      if (!["auto", "on", "off"].includes(sandboxMode)) throw new CliError(`STASIS_TASK_SANDBOX must be auto, on or off, not ${JSON.stringify(sandboxMode)}`, ExitCode.USAGE);
      const hidden = [workDir, resolve(opts.imageCache), ...(checkpointStore?.kind === "dir" ? [checkpointStore.where] : []), ...pathList(process.env.STASIS_TASK_HIDE_PATHS)];
      const sandboxWanted = sandboxMode !== "off";
      const taskSandbox: TaskSandboxPolicy | null = canSandboxTasks() && sandboxWanted
        ? { uidBase, hide: hidden, shared: pathList(opts.taskSharedDirs ?? process.env.STASIS_TASK_SHARED_DIRS).map((d) => resolve(d)) }
        : null;
      if (canSandboxTasks() && !sandboxWanted) log.warn("STASIS_TASK_SANDBOX=off: task processes run as root and can read what the runner can");
      else if (!taskSandbox) log.warn("not running as root: task processes run as this runner's own user and can read what it can (run the runner as root to give each environment's tasks their own user)");
      const runner = createRunner({
        serverUrl,
        runnerToken,
        name: opts.name,
        capacity: Number(opts.capacity),
        runtime,
        checkpoints: checkpointStore?.store ?? null,
        appDirFor: images,
        rootfsFor: workload === "process" ? undefined : images.rootfsFor,
        workload,
        workDir,
        suspendThresholdMs: opts.suspendThreshold === undefined ? undefined : Number(opts.suspendThreshold),
        localCheckpointBytes,
        keepStoppedBytes,
        taskEnv: opts.envFile ? readDotEnv(opts.envFile) : {},
        taskSandbox,
        warmProcesses,
        log,
      });
      let registered = false;
      let stopping: Promise<void> | null = null;
      const stop = (graceMs: number) =>
        (stopping ??= (async () => {
          progress(`runner ${runner.id}: draining (up to ${graceMs} ms)`);
          await runner.drain(graceMs, opts.drainFinish === undefined ? undefined : Number(opts.drainFinish));
          process.exit(0);
        })());
      const healthPort = opts.healthPort ?? process.env.STASIS_RUNNER_HEALTH_PORT;
      if (healthPort) {
        await startHealthServer({ port: Number(healthPort), ready: () => registered && !stopping, onDrain: () => void stop(Number(opts.drainGrace)) });
      }
      await runner.start();
      registered = true;
      printResult(Boolean(opts.json), { runnerId: runner.id, checkpoints: runtime.checkpoints.available }, () => `runner ${runner.id} is claiming runs from ${serverUrl}`);
      process.once("SIGTERM", () => void stop(Number(opts.drainGrace)));
      process.once("SIGINT", () => void stop(Number(opts.drainGrace)));
    });
}

/** A flag's size in MiB (a number >= 0, fractions allowed) as bytes; a usage error naming the flag and the value otherwise. */
function mibToBytes(flag: string, value: string): number {
  const mib = Number(value);
  if (value.trim() === "" || !Number.isFinite(mib) || mib < 0) throw new CliError(`${flag} must be a number of MiB >= 0, not ${JSON.stringify(value)}`, ExitCode.USAGE);
  return Math.floor(mib * 2 ** 20);
}
