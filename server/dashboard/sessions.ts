import { createHash, randomBytes } from "node:crypto";
import type { Knex } from "knex";

const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");
const randomToken = (bytes: number) => randomBytes(bytes).toString("base64url");

/**
 * Dashboard sessions and one-time login tokens. A session is the principal its credential was —
 * the admin, or one environment (bound to the API key it signed in with, so revoking the key ends
 * it) — never more. Only sha256s of session and login tokens are stored.
 */
export const SESSION_COOKIE = "stasis_session";
export const CSRF_HEADER = "x-csrf-token";
export const DEFAULT_SESSION_TTL_MS = 12 * 60 * 60 * 1000;
export const LOGIN_TOKEN_TTL_MS = 15 * 60 * 1000;

export type SessionGrant = { kind: "admin" } | { kind: "env"; environmentId: string; apiKeyId?: string | null };

export interface NewSession {
  token: string;
  csrfToken: string;
  expiresAt: Date;
}

export async function createSession(db: Knex, grant: SessionGrant, ttlMs: number): Promise<NewSession> {
  const token = randomToken(32);
  const csrfToken = randomToken(24);
  const expiresAt = new Date(Date.now() + ttlMs);
  await db("dashboard_sessions").insert({
    token_hash: sha256(token),
    kind: grant.kind,
    environment_id: grant.kind === "env" ? grant.environmentId : null,
    api_key_id: grant.kind === "env" ? (grant.apiKeyId ?? null) : null,
    csrf_token: csrfToken,
    expires_at: expiresAt,
  });
  // Expired sessions are kept out by their expiry; sweep them now and then (cheap, indexed).
  if (Math.random() < 0.05) await db("dashboard_sessions").where("expires_at", "<", db.fn.now()).delete();
  return { token, csrfToken, expiresAt };
}

export interface SessionRow {
  kind: "admin" | "env";
  environmentId: string | null;
  csrfToken: string;
  expired: boolean;
}

/** The session a cookie names (null: none such, or its key was revoked); `expired` says whether it still counts. */
export async function findSession(db: Knex, token: string): Promise<SessionRow | null> {
  const row = await db("dashboard_sessions as s")
    .leftJoin("api_keys as k", "k.id", "s.api_key_id")
    .where("s.token_hash", sha256(token))
    .first("s.kind", "s.environment_id", "s.api_key_id", "k.revoked_at", "s.csrf_token", db.raw("s.expires_at <= now() AS expired"));
  if (!row) return null;
  if (row.api_key_id && row.revoked_at) return null;
  return { kind: row.kind, environmentId: row.environment_id, csrfToken: row.csrf_token, expired: row.expired };
}

export async function deleteSession(db: Knex, token: string): Promise<void> {
  await db("dashboard_sessions").where({ token_hash: sha256(token) }).delete();
}

export async function createLoginToken(db: Knex, grant: SessionGrant, ttlMs = LOGIN_TOKEN_TTL_MS): Promise<{ token: string; expiresAt: Date }> {
  const token = `lt_${randomToken(32)}`;
  const expiresAt = new Date(Date.now() + ttlMs);
  await db("dashboard_login_tokens").insert({ token_hash: sha256(token), kind: grant.kind, environment_id: grant.kind === "env" ? grant.environmentId : null, expires_at: expiresAt });
  return { token, expiresAt };
}

/** Compare-and-set on `used_at`: of two tabs opening one link, one gets the session. */
export async function consumeLoginToken(db: Knex, token: string): Promise<SessionGrant | null> {
  const [row] = await db("dashboard_login_tokens")
    .where({ token_hash: sha256(token) })
    .whereNull("used_at")
    .where("expires_at", ">", db.fn.now())
    .update({ used_at: db.fn.now() })
    .returning(["kind", "environment_id"]);
  if (!row) return null;
  return row.kind === "admin" ? { kind: "admin" } : { kind: "env", environmentId: row.environment_id };
}
