// Who PostgreSQL runs as, and what that user can reach. PostgreSQL refuses to run as root, so a root
// process runs initdb and the server as the `postgres` system user (created when missing); any other
// user runs them as itself.
import { execFileSync, spawnSync } from "node:child_process";
import { userInfo } from "node:os";

export interface PostgresUser {
  uid: number;
  gid: number;
}

/** The user to run PostgreSQL as: `postgres` when we are root (created when missing), else null (ourselves). */
export function postgresUser(): PostgresUser | null {
  if (userInfo().uid !== 0) return null;
  let ids = lookup("postgres");
  if (!ids) {
    try {
      if (spawnSync("getent", ["group", "postgres"]).status !== 0) execFileSync("groupadd", ["--system", "postgres"], { stdio: "pipe" });
      execFileSync("useradd", ["--system", "-g", "postgres", "-d", "/var/lib/postgresql", "-s", "/bin/sh", "postgres"], { stdio: "pipe" });
    } catch (cause) {
      throw new Error("PostgreSQL cannot run as root and the `postgres` system user could not be created", { cause });
    }
    ids = lookup("postgres");
    if (!ids) throw new Error("the `postgres` system user was created but cannot be found");
  }
  return ids;
}

function lookup(name: string): PostgresUser | null {
  const uid = spawnSync("id", ["-u", name], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", name], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0) return null;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * Whether `user` passes `test <flag> <target>` — asked of the kernel as that user (every directory on
 * the way, ACLs, mount options), not worked out from mode bits. Null user: we are that user.
 */
export function userCan(user: PostgresUser | null, flag: "-x" | "-r" | "-w", target: string): boolean {
  const result = spawnSync("test", [flag, target], user ? { uid: user.uid, gid: user.gid } : {});
  return result.status === 0;
}
