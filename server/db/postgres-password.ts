// The embedded PostgreSQL's superuser password: random, made at first start, kept in a 0600 file
// beside the data. Data dirs made before this file existed used the fixed password "stasis"; their
// first start here changes it to a random one.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import pg from "pg";

export const LEGACY_PASSWORD = "stasis";

export function newPassword(): string {
  return randomBytes(24).toString("base64url");
}

export function readPassword(file: string): string | null {
  if (!existsSync(file)) return null;
  const password = readFileSync(file, "utf8").trim();
  return password || null;
}

/** Write atomically, 0600 from the first byte. */
export async function storePassword(file: string, password: string): Promise<void> {
  const staging = `${file}.tmp-${process.pid}`;
  await rm(staging, { force: true });
  await writeFile(staging, `${password}\n`, { mode: 0o600, flag: "wx" });
  await rename(staging, file);
}

/**
 * A server whose password file is missing (made with the legacy fixed password, or stopped between
 * ALTER and storing): find the password it takes — the pending one first, then the legacy one —
 * change it to the pending one, then store that. The pending one is on disk before the ALTER, so a
 * crash at any point leaves a password that a later start finds.
 */
export async function adoptPassword(options: { port: number; passwordFile: string }): Promise<string> {
  const pendingFile = `${options.passwordFile}.pending`;
  let pending = readPassword(pendingFile);
  if (!pending) {
    pending = newPassword();
    await storePassword(pendingFile, pending);
  }
  for (const candidate of [pending, LEGACY_PASSWORD]) {
    const client = new pg.Client({ host: "127.0.0.1", port: options.port, user: "postgres", password: candidate, database: "postgres" });
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      if ((error as { code?: string }).code === "28P01") continue; // invalid_password
      throw error;
    }
    try {
      if (candidate !== pending) await client.query(`ALTER ROLE postgres PASSWORD ${client.escapeLiteral(pending)}`);
    } finally {
      await client.end().catch(() => {});
    }
    await rename(pendingFile, options.passwordFile);
    return pending;
  }
  throw new Error(`the embedded PostgreSQL takes neither the legacy nor a pending password, and ${options.passwordFile} is missing`);
}
