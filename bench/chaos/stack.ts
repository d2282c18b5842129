// A real stack of separate processes for the chaos run and the soak: Debian's PostgreSQL (its own
// data dir and port), `stasis server` process(es) on DATABASE_URL, `stasis runner` processes
// sharing one checkpoint dir (a small tmpfs, so the disk can be filled), and the project deployed
// to an OCI layout dir. Every process can be killed with SIGKILL and started again on the same
// port / work dir. `cleanup()` kills everything under the stack's state dir, also after a crash.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pg from "pg";
import { callStasisApi, createLayoutImageStore, deployProject } from "../../builder/index.ts";
import { freePort } from "../../server/index.ts";
import { debianPostgresBin } from "../../test/support/debian-postgres.ts";
import { waitFor } from "../../test/support/wait-for.ts";
import { processesWith } from "./procfs.ts";

const REPO_ROOT = resolve(import.meta.dirname, "../..");
const CLI = join(REPO_ROOT, "cli/bin.mjs");
const ADMIN_TOKEN = "adm_chaos_harness_token_0123456789";
/** The servers' master key (environment variables and checkpoint keys are sealed under it). */
const ENCRYPTION_KEY = randomBytes(32).toString("base64");
const RUNNER_TOKEN = "rnr_chaos_harness_token_0123456789";

export interface StackOptions {
  servers: number;
  runners: number;
  capacity: number;
  /** `--keep-stopped` of the process runners (MiB). */
  keepStoppedMiB?: number;
  /** How many of the runners run tasks under runc in the image's own root (the last ones); the image then carries Node. */
  runcRunners?: number;
  /** Size of the checkpoint tmpfs in MiB (0: a plain dir on the state disk; the disk-fill fault is then off). */
  checkpointTmpfsMb: number;
  projectDir: string;
  log?: (line: string) => void;
}

export interface Daemon {
  name: string;
  /** The running child, or null while it is down. */
  child: ChildProcess | null;
  /** Bumped on every start. */
  generation: number;
  /** The runner id it registered with (runners only; a restart registers anew). */
  runnerId?: string;
  /** Runners only: the workload it runs tasks with. */
  workload?: "process" | "runc";
}

export interface KilledRunner {
  killedAt: number;
  /** When no process under the runner was left; unset until the injector saw it (or if it never did). */
  goneAt?: number;
}

export interface Stack {
  stateDir: string;
  checkpointDir: string;
  checkpointTmpfs: boolean;
  databaseUrl: string;
  apiUrls: string[];
  apiKey: string;
  db: pg.Pool;
  servers: Daemon[];
  runners: Daemon[];
  postgresPid(): number | null;
  killServer(i: number): void;
  startServer(i: number): Promise<void>;
  killRunner(i: number): number | null;
  startRunner(i: number): Promise<void>;
  /** `pg_ctl stop -m immediate` — SIGQUIT to the postmaster, which is what pg_ctl sends. */
  stopPostgres(): Promise<void>;
  startPostgres(): Promise<void>;
  /** Runner id → when the harness killed it, and when the last process under it was gone (set by the injector). */
  killedRunners: Map<string, KilledRunner>;
  cleanup(): Promise<void>;
}

export async function startStack(options: StackOptions): Promise<Stack> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const stateDir = mkdtempSync(join(tmpdir(), "stasis-chaos-"));
  chmodSync(stateDir, 0o755);
  const logDir = join(stateDir, "logs");
  mkdirSync(logDir);
  const checkpointDir = join(stateDir, "checkpoints");
  mkdirSync(checkpointDir);
  let checkpointTmpfs = false;
  const children = new Set<ChildProcess>();
  let cleaned = false;
  let pool: pg.Pool | undefined;
  let stopPostgresQuietly: (() => Promise<void>) | undefined;

  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    // PostgreSQL first, with an immediate shutdown, so its backends go with it.
    await stopPostgresQuietly?.();
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    // Task processes, namespace inits and criu children outlive a killed runner: end them by PID.
    for (let round = 0; round < 3; round++) {
      const left = await processesWith(stateDir);
      if (!left.length) break;
      for (const pid of left) try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
      await new Promise((r) => setTimeout(r, 300));
    }
    await pool?.end().catch(() => {});
    if (checkpointTmpfs) try { execFileSync("umount", ["-l", checkpointDir]); } catch { /* not mounted */ }
    if (!process.env.STASIS_CHAOS_KEEP) rmSync(stateDir, { recursive: true, force: true });
    else log(`state and logs kept in ${stateDir}`);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    void cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", () => {
    // Last resort (synchronous): whatever is still ours dies with us.
    if (!cleaned) for (const child of children) try { child.kill("SIGKILL"); } catch { /* gone */ }
  });

  const spawnLogged = (name: string, file: string, args: string[], env: Record<string, string>, extra: { uid?: number; gid?: number } = {}) => {
    const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], ...extra });
    children.add(child);
    child.once("exit", () => children.delete(child));
    const logFile = join(logDir, `${name}.log`);
    const append = (c: Buffer) => {
      if (!cleaned) try { appendFileSync(logFile, c); } catch { /* the state dir is going away */ }
    };
    let stdout = "";
    child.stdout!.on("data", (c) => {
      stdout += c;
      append(c);
    });
    child.stderr!.on("data", append);
    return { child, stdout: () => stdout };
  };

  try {
    if (options.checkpointTmpfsMb > 0) {
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${options.checkpointTmpfsMb}m,mode=0755`, "tmpfs", checkpointDir]);
      checkpointTmpfs = true;
    }

    // PostgreSQL: spawned as the postgres user directly so our signals reach the postmaster.
    const pgBin = debianPostgresBin();
    const pgDir = join(stateDir, "pg");
    mkdirSync(pgDir);
    chmodSync(pgDir, 0o777);
    const pgData = join(pgDir, "data");
    execFileSync("runuser", ["-u", "postgres", "--", join(pgBin, "initdb"), "-D", pgData, "-U", "postgres", "--auth=trust"], { stdio: "ignore" });
    const pgPort = await freePort();
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    let postgres: ChildProcess | null = null;
    const adminUrl = `postgres://postgres@127.0.0.1:${pgPort}/postgres`;
    const databaseUrl = `postgres://postgres@127.0.0.1:${pgPort}/stasis_chaos`;
    const startPostgres = async () => {
      postgres = spawnLogged("postgres", join(pgBin, "postgres"), ["-D", pgData, "-p", String(pgPort), "-c", "listen_addresses=127.0.0.1", "-k", pgDir, "-c", "fsync=off", "-c", "max_connections=300"], {}, { uid, gid }).child;
      await waitFor("PostgreSQL to accept connections", async () => {
        const client = new pg.Client({ connectionString: adminUrl });
        try {
          await client.connect();
          await client.query("SELECT 1");
          return true;
        } finally {
          await client.end().catch(() => {});
        }
      }, { timeoutMs: 60_000, intervalMs: 100 });
    };
    const stopPostgres = async () => {
      const proc = postgres;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGQUIT");
      await exited;
      postgres = null;
    };
    stopPostgresQuietly = () => Promise.race([stopPostgres(), new Promise<void>((r) => setTimeout(r, 5000))]).catch(() => {});
    await startPostgres();
    {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      await client.query("CREATE DATABASE stasis_chaos");
      await client.end();
    }
    pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    pool.on("error", () => {}); // PostgreSQL restarts are part of the run

    const serverPorts = await Promise.all(Array.from({ length: options.servers }, () => freePort()));
    const apiUrls = serverPorts.map((p) => `http://127.0.0.1:${p}`);
    const servers: Daemon[] = serverPorts.map((_, i) => ({ name: `server-${i + 1}`, child: null, generation: 0 }));
    const runcFrom = options.runners - Math.min(options.runners, options.runcRunners ?? 0);
    const runners: Daemon[] = Array.from({ length: options.runners }, (_, i) => ({ name: `runner-${i + 1}`, child: null, generation: 0, workload: i >= runcFrom ? "runc" : "process" }));
    const killedRunners = new Map<string, KilledRunner>();

    const startDaemon = async (daemon: Daemon, args: string[], env: Record<string, string>) => {
      daemon.generation++;
      const { child, stdout } = spawnLogged(`${daemon.name}.${daemon.generation}`, process.execPath, [CLI, ...args], { STASIS_LOG_LEVEL: "info", ...env });
      daemon.child = child;
      // Not waitFor: it would keep polling past an exit; a daemon that died says so at once.
      const deadline = Date.now() + 120_000;
      let line: string | undefined;
      while (!(line = stdout().split("\n").find((l) => l.startsWith("{")))) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${daemon.name} exited (${child.exitCode ?? child.signalCode}); see ${logDir}`);
        if (Date.now() > deadline) throw new Error(`${daemon.name} was not ready within 120 s; see ${logDir}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return JSON.parse(line) as Record<string, string>;
    };
    const startServer = async (i: number, firstStart = false) => {
      // Other programs on this machine may take a port between freePort() and listen: on the first
      // start pick another; on a restart the runners need the same one, so try it again.
      for (let tries = 0; ; tries++) {
        try {
          return await startDaemon(servers[i], ["server", "--port", String(serverPorts[i]), "--json"], { DATABASE_URL: databaseUrl, STASIS_ADMIN_TOKEN: ADMIN_TOKEN, STASIS_RUNNER_TOKEN: RUNNER_TOKEN, STASIS_ENCRYPTION_KEY: ENCRYPTION_KEY });
        } catch (error) {
          if (tries >= 5) throw error;
          log(`${servers[i].name} did not start (${(error as Error).message}); trying again`);
          if (firstStart) {
            serverPorts[i] = await freePort();
            apiUrls[i] = `http://127.0.0.1:${serverPorts[i]}`;
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    };
    const startRunner = async (i: number) => {
      const r = runners[i];
      const ready = await startDaemon(r, ["runner", "--server-url", apiUrls[i % apiUrls.length], "--name", `chaos-${r.name}`, "--capacity", String(options.capacity), "--work-dir", join(stateDir, r.name), "--image-cache", join(stateDir, "image-cache"), "--checkpoint-dir", checkpointDir, "--drain-grace", "2000", "--workload", r.workload ?? "process", ...((r.workload ?? "process") === "process" && options.keepStoppedMiB ? ["--keep-stopped", String(options.keepStoppedMiB)] : []), "--json"], { STASIS_RUNNER_TOKEN: RUNNER_TOKEN });
      r.runnerId = ready.runnerId;
    };
    const kill = (daemon: Daemon) => {
      const child = daemon.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return null;
      child.kill("SIGKILL");
      daemon.child = null;
      return child.pid ?? null;
    };

    // Servers one after the other: the first one migrates.
    for (let i = 0; i < servers.length; i++) await startServer(i, true);
    const created = await callStasisApi<{ environments: Array<{ environment: string; apiKey: string }> }>(apiUrls[0], ADMIN_TOKEN, "POST", "/api/v1/admin/projects", { slug: "chaos" });
    const apiKey = created.environments.find((e) => e.environment === "production")!.apiKey;
    await deployProject({ projectDir: options.projectDir, apiUrl: apiUrls[0], apiKey, store: createLayoutImageStore(join(stateDir, "images")), promote: true, withRuntime: runcFrom < options.runners });
    await Promise.all(runners.map((_, i) => startRunner(i)));
    log(`stack up: PostgreSQL :${pgPort}, ${servers.length} server(s) ${apiUrls.join(" ")}, ${runners.length} runners × ${options.capacity} (${runners.map((r) => r.workload).join(", ")}), checkpoints in ${checkpointTmpfs ? `a ${options.checkpointTmpfsMb} MiB tmpfs` : "a dir"} (${stateDir})`);

    return {
      stateDir,
      checkpointDir,
      checkpointTmpfs,
      databaseUrl,
      apiUrls,
      apiKey,
      db: pool,
      servers,
      runners,
      postgresPid: () => (postgres as ChildProcess | null)?.pid ?? null,
      killServer: (i) => void kill(servers[i]),
      startServer: async (i) => void (await startServer(i)),
      killRunner(i) {
        const id = runners[i].runnerId;
        const pid = kill(runners[i]);
        if (pid && id) killedRunners.set(id, { killedAt: Date.now() });
        return pid;
      },
      startRunner,
      stopPostgres,
      startPostgres,
      killedRunners,
      cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
