import { readFileSync } from "node:fs";
import { BuilderError } from "../errors.ts";

export interface BuildUser {
  uid: number;
  gid: number;
  name: string;
}

/**
 * The unprivileged user builds run as when Stasis runs as root: STASIS_BUILD_USER (a user name
 * from /etc/passwd, or `uid:gid`), default `nobody`.
 */
export function buildUser(env: NodeJS.ProcessEnv = process.env): BuildUser {
  const wanted = env.STASIS_BUILD_USER?.trim() || "nobody";
  const numeric = /^(\d+):(\d+)$/.exec(wanted);
  if (numeric) {
    const user = { uid: Number(numeric[1]), gid: Number(numeric[2]), name: wanted };
    if (user.uid === 0) throw new BuilderError("BUILD_SANDBOX_FAILED", "STASIS_BUILD_USER must not be root (uid 0): builds run the pushed repository's code");
    return user;
  }
  const passwd = readFileSync("/etc/passwd", "utf8").split("\n").map((line) => line.split(":"));
  const row = passwd.find((fields) => fields[0] === wanted);
  if (!row) throw new BuilderError("BUILD_SANDBOX_FAILED", `STASIS_BUILD_USER ${JSON.stringify(wanted)} is not a user in /etc/passwd (create it, or give uid:gid)`);
  const user = { uid: Number(row[2]), gid: Number(row[3]), name: wanted };
  if (user.uid === 0) throw new BuilderError("BUILD_SANDBOX_FAILED", `STASIS_BUILD_USER ${wanted} is root: builds run the pushed repository's code and need an unprivileged user`);
  return user;
}
