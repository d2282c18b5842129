// Debian's PostgreSQL as an external server: its own initdb'd data dir and port, reached only by URL.
// Installs `postgresql` with apt when it is missing.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "../../server/index.ts";
import { waitFor } from "./wait-for.ts";

export interface DebianPostgres {
  /** URL of a database on this server (created by `createDatabase`), or of `postgres`. */
  url(database?: string): string;
  createDatabase(name: string): Promise<string>;
  /**
   * Stops the server the way a crash would (immediate shutdown: every connection dropped), runs
   * `whileDown` (e.g. waits until a client noticed), then starts it again on the same port and data.
   */
  restart(options?: { whileDown?: () => Promise<unknown> }): Promise<void>;
  stop(): Promise<void>;
}

export function debianPostgresBin(): string {
  const find = () => {
    const root = "/usr/lib/postgresql";
    if (!existsSync(root)) return null;
    const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, "bin", "postgres"))).sort((a, b) => Number(b) - Number(a));
    return versions.length ? path.join(root, versions[0], "bin") : null;
  };
  let bin = find();
  if (!bin) {
    execFileSync("apt-get", ["update"], { stdio: "ignore" });
    execFileSync("apt-get", ["install", "-y", "postgresql"], { stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    bin = find();
  }
  if (!bin) throw new Error("Debian's postgresql is not installed and apt-get could not install it");
  return bin;
}

export async function startDebianPostgres(): Promise<DebianPostgres> {
  const bin = debianPostgresBin();
  const dir = mkdtempSync(path.join(tmpdir(), "stasis-debpg-"));
  chmodSync(dir, 0o777);
  const data = path.join(dir, "data");
  execFileSync("runuser", ["-u", "postgres", "--", path.join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust"], { stdio: "ignore" });
  const port = await freePort();
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  // Spawned as the postgres user directly (not through runuser) so our signals reach the server.
  const startServer = (): ChildProcess =>
    spawn(path.join(bin, "postgres"), ["-D", data, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-k", dir, "-c", "fsync=off", "-c", "max_connections=200"], { stdio: "ignore", uid, gid });
  let proc = startServer();
  const halt = async (signal: NodeJS.Signals) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(signal);
    await exited;
  };
  const url = (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const query = async (sql: string) => {
    const client = new pg.Client({ connectionString: url() });
    try {
      await client.connect();
      await client.query(sql);
    } finally {
      await client.end().catch(() => {});
    }
  };
  await waitFor("Debian's PostgreSQL to accept connections", () => query("SELECT 1").then(() => true), { timeoutMs: 30_000, intervalMs: 100 });
  return {
    url,
    async createDatabase(name) {
      await query(`CREATE DATABASE "${name}"`);
      return url(name);
    },
    async restart(options = {}) {
      await halt("SIGQUIT");
      try {
        await options.whileDown?.();
      } finally {
        proc = startServer();
      }
      await waitFor("Debian's PostgreSQL to accept connections again", () => query("SELECT 1").then(() => true, () => false), { timeoutMs: 30_000, intervalMs: 100 });
    },
    async stop() {
      await halt("SIGINT");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
