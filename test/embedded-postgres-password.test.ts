// The embedded PostgreSQL's superuser password is random, made at first start and kept mode 0600
// beside the data (not in the postgres-owned data dir); a data dir made with the old fixed password
// "stasis" still starts, and its password is changed to a random one.
import { chmodSync, mkdtempSync, rmSync, statSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, expect, it } from "vitest";
import { startEmbeddedPostgres } from "../server/index.ts";

const root = mkdtempSync(path.join(tmpdir(), "stasis-pg-password-"));
chmodSync(root, 0o755);
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function canConnect(url: string, password: string): Promise<boolean> {
  const parsed = new URL(url);
  const client = new pg.Client({ host: parsed.hostname, port: Number(parsed.port), user: "postgres", password, database: "postgres" });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

it("uses a random password kept 0600 beside the data, and moves a legacy data dir off the fixed one", async () => {
  const dataDir = path.join(root, "pg");
  const passwordFile = `${dataDir}.password`;
  const first = await startEmbeddedPostgres({ dataDir });
  const password = decodeURIComponent(new URL(first.url).password);
  try {
    expect(password).not.toBe("stasis");
    expect(password.length).toBeGreaterThanOrEqual(24);
    const stat = statSync(passwordFile);
    expect(stat.mode & 0o777).toBe(0o600);
    expect(stat.uid).toBe(process.getuid!());
    expect(await canConnect(first.url, password)).toBe(true);
    expect(await canConnect(first.url, "stasis")).toBe(false);
    // Make it look like a data dir from before: the fixed password, no password file.
    const client = new pg.Client({ connectionString: first.url });
    await client.connect();
    await client.query("ALTER ROLE postgres PASSWORD 'stasis'");
    await client.end();
  } finally {
    await first.stop();
  }
  unlinkSync(passwordFile);

  const second = await startEmbeddedPostgres({ dataDir });
  try {
    const migrated = decodeURIComponent(new URL(second.url).password);
    expect(migrated).not.toBe("stasis");
    expect(migrated).not.toBe(password);
    expect(await canConnect(second.url, migrated)).toBe(true);
    expect(await canConnect(second.url, "stasis")).toBe(false);
    expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
  } finally {
    await second.stop();
  }

  const third = await startEmbeddedPostgres({ dataDir });
  try {
    expect(await canConnect(third.url, decodeURIComponent(new URL(third.url).password))).toBe(true);
  } finally {
    await third.stop();
  }
});
