import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import type { Knex } from "knex";
import pino, { type Logger } from "pino";
import { canSandboxTasks, createImageCache, createProcessRuntime, createRuncRuntime, createRunner, openCheckpointStore, type Runner, type TaskSandboxPolicy } from "../runner/index.ts";
import { listenOn } from "./listen.ts";
import { connectDatabase, createServer, migrate, startEmbeddedPostgres, type CreateServerOptions, type Keyring } from "../server/index.ts";
import { localKeyring } from "./encryption-key.ts";

export interface LocalStackOptions {
  /** Where the embedded database, images, checkpoints and the image cache live. */
  stateDir: string;
  /** An external PostgreSQL; nothing embedded starts when set. */
  databaseUrl?: string;
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  adminToken?: string;
  runnerToken?: string;
  /** In-process runners to start (0: none; start `stasis runner` processes instead). */
  runners?: number;
  capacity?: number;
  /** false: runs stay alive while they wait even when CRIU works. */
  checkpoints?: boolean;
  /** Which checkpoint store the in-process runners use: dir (`<stateDir>/checkpoints`, default) or registry (see openCheckpointStore). */
  checkpointStore?: { kind?: string; repository?: string };
  /** How in-process runners run tasks: "process" (default) or "runc" (the image's rootfs; images need the runtime layer). */
  workload?: "process" | "runc";
  /** Stop an embedded PostgreSQL an earlier, killed owner left running in the state dir. */
  stopLeftoverDatabase?: boolean;
  /** The most started, never-used task processes kept per recent deployment by in-process runners (the runner's `warmProcesses`: default up to the free slots, 0 none). */
  warmProcesses?: number | "slots";
  suspendThresholdMs?: number;
  /** Bytes of their own dumps in-process runners keep for a resume here (runner default; 0: every resume fetches the stored copy). */
  localCheckpointBytes?: number;
  /** runner/runner.ts `keepStoppedBytes`. */
  keepStoppedBytes?: number;
  taskEnv?: Record<string, string>;
  /**
   * Run in-process runners' task processes as their environment's own user, with the state dir
   * hidden (as `stasis runner` does when root). Default false: `stasis dev` runs your own code.
   */
  taskSandbox?: { uidBase?: number; shared?: string[] } | boolean;
  log?: Logger;
  onRunnerEvent?: (event: { type: string; runId: string; runner: string }) => void;
  /** Engine knobs (lease length, heartbeat interval…); tests shorten them. */
  engine?: CreateServerOptions["engine"];
  /** Master key(s) for environment variables; default STASIS_ENCRYPTION_KEY, else `<stateDir>/encryption.key` (made on first start, mode 0600). */
  keyring?: Keyring;
}

export interface LocalStack {
  apiUrl: string;
  adminToken: string;
  runnerToken: string;
  db: Knex;
  runners: Runner[];
  checkpointsMode: { available: boolean; reason?: string };
  dirs: { images: string; checkpoints: string; imageCache: string; work: string };
  stop(): Promise<void>;
}

/** PostgreSQL (embedded unless a URL is given), the server, and in-process runners, in one process. */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = options.log ?? pino({ level: "warn" });
  const dirs = {
    images: join(options.stateDir, "images"),
    checkpoints: join(options.stateDir, "checkpoints"),
    imageCache: join(options.stateDir, "image-cache"),
    work: join(options.stateDir, "work"),
  };
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });

  const embedded = options.databaseUrl ? null : await startEmbeddedPostgres({ dataDir: join(options.stateDir, "pg"), stopLeftover: options.stopLeftoverDatabase, onNotice: (message) => log.warn(message) });
  const db = connectDatabase(options.databaseUrl ?? embedded!.url);
  const stops: Array<() => Promise<void>> = [];
  try {
    await migrate(db);
    const adminToken = options.adminToken ?? `adm_${randomBytes(24).toString("hex")}`;
    const runnerToken = options.runnerToken ?? `rnr_${randomBytes(24).toString("hex")}`;
    const host = options.host ?? "127.0.0.1";
    const port = options.port || (await freePort(host));
    const apiUrl = `http://${host}:${port}`;
    const keyring = options.keyring ?? (await localKeyring(options.stateDir));
    const server = await createServer({ db, adminToken, runnerToken, publicUrl: apiUrl, logger: false, suspendThresholdMs: options.suspendThresholdMs, engine: options.engine, keyring });
    stops.push(() => server.close());
    await listenOn(server.app, host, port);

    const workload = options.workload ?? "process";
    const runtime = workload === "runc" ? await createRuncRuntime({ checkpoints: options.checkpoints, workDir: join(dirs.work, "runc") }) : await createProcessRuntime({ checkpoints: options.checkpoints, workDir: dirs.work });
    stops.push(async () => runtime.close?.());
    const checkpointStore = options.checkpoints === false ? null : openCheckpointStore({ ...options.checkpointStore, defaultDir: dirs.checkpoints, dir: options.checkpointStore?.kind === "registry" ? undefined : dirs.checkpoints }).store;
    const runners: Runner[] = [];
    const images = createImageCache(dirs.imageCache);
    const sandboxOptions = options.taskSandbox === true ? {} : options.taskSandbox || null;
    const taskSandbox: TaskSandboxPolicy | null = sandboxOptions && canSandboxTasks() ? { ...sandboxOptions, hide: [options.stateDir, ...Object.values(dirs)] } : null;
    for (let i = 0; i < (options.runners ?? 1); i++) {
      const runner = createRunner({
        serverUrl: apiUrl,
        runnerToken,
        name: `local-${i + 1}`,
        capacity: options.capacity ?? 10,
        runtime,
        checkpoints: checkpointStore,
        appDirFor: images,
        rootfsFor: workload === "runc" ? images.rootfsFor : undefined,
        workload,
        workDir: dirs.work,
        suspendThresholdMs: options.suspendThresholdMs,
        localCheckpointBytes: options.localCheckpointBytes,
        keepStoppedBytes: options.keepStoppedBytes,
        taskEnv: options.taskEnv,
        taskSandbox,
        warmProcesses: options.warmProcesses,
        log: log.child({ runner: i + 1 }),
        onEvent: (event) => options.onRunnerEvent?.({ ...event, runner: `local-${i + 1}` }),
      });
      await runner.start();
      runners.push(runner);
      // Runs get the whole grace to finish, then are given back (no hand-over checkpoints on the way out of a local stack).
      stops.unshift(() => runner.drain(5_000, 5_000));
    }
    return {
      apiUrl,
      adminToken,
      runnerToken,
      db,
      runners,
      checkpointsMode: runtime.checkpoints,
      dirs,
      async stop() {
        for (const stop of stops) await stop().catch((error: Error) => log.warn({ err: error.message }, "stop failed"));
        await db.destroy();
        await embedded?.stop();
      },
    };
  } catch (error) {
    for (const stop of stops) await stop().catch(() => {});
    await db.destroy();
    await embedded?.stop();
    throw error;
  }
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once("error", reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
