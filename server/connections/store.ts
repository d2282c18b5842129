import type { Knex } from "knex";
import * as oidc from "openid-client";
import type { ConnectionView, TokenResponse } from "../../schemas/index.ts";
import type { EnvironmentPrincipal } from "../auth.ts";
import { StasisError } from "../errors.ts";
import { decryptSecret, encryptSecret } from "../secrets/crypto.ts";
import { dataKeyFor } from "../secrets/data-keys.ts";
import type { Keyring } from "../secrets/keyring.ts";
import { findIntegrationRow, integrationNotFound, loadIntegration, type IntegrationRow } from "./integrations.ts";
import { clientConfig } from "./oauth-client.ts";
import { connectionPlace, refreshUnderLease } from "./refresh-token.ts";

interface ConnectionRow {
  id: string;
  integration_id: string;
  external_id: string;
  account: string | null;
  scopes: string[];
  access_token_encrypted: Buffer;
  refresh_token_encrypted: Buffer | null;
  obtained_at: Date;
  expires_at: Date | null;
  last_refresh_at: Date | null;
  status: "active" | "broken";
  broken_reason: string | null;
  created_at: Date;
}

/** What a finished grant (or an API-key form) stores. */
export interface NewTokens {
  accessToken: string;
  refreshToken: string | null;
  expiresInSeconds: number | null;
  scopes: string[];
  account: string | null;
}

const place = connectionPlace;

/** Stores (or replaces, on a new grant) one account's tokens, encrypted; a replaced broken connection is active again. */
export async function saveConnection(db: Knex, keyring: Keyring | null | undefined, projectId: string, integrationId: string, externalId: string, tokens: NewTokens): Promise<void> {
  await db.transaction(async (trx) => {
    const dataKey = (await dataKeyFor(trx, keyring, projectId, { create: true }))!;
    const where = { integration_id: integrationId, external_id: externalId };
    const values = {
      account: tokens.account,
      scopes: tokens.scopes,
      access_token_encrypted: encryptSecret(dataKey, projectId, place(where, "access_token"), tokens.accessToken),
      refresh_token_encrypted: tokens.refreshToken ? encryptSecret(dataKey, projectId, place(where, "refresh_token"), tokens.refreshToken) : null,
      obtained_at: trx.fn.now(),
      expires_at: tokens.expiresInSeconds === null ? null : trx.raw("now() + make_interval(secs => ?)", [tokens.expiresInSeconds]),
      last_refresh_at: null,
      refresh_count: 0,
      status: "active",
      broken_reason: null,
      updated_at: trx.fn.now(),
    };
    await trx("connections").insert({ ...where, ...values }).onConflict(["integration_id", "external_id"]).merge(values);
  });
}

function toView(row: ConnectionRow & { slug: string }): ConnectionView {
  return {
    id: row.id,
    integration: row.slug,
    externalId: row.external_id === "" ? null : row.external_id,
    account: row.account,
    scopes: row.scopes,
    expiresAt: row.expires_at?.toISOString() ?? null,
    lastRefreshAt: row.last_refresh_at?.toISOString() ?? null,
    status: row.status,
    brokenReason: row.broken_reason,
    createdAt: row.created_at.toISOString(),
  };
}

export async function listConnections(db: Knex, env: EnvironmentPrincipal, integration?: string): Promise<ConnectionView[]> {
  const query = db("connections as c").join("integrations as i", "i.id", "c.integration_id").where("i.environment_id", env.environmentId);
  if (integration) query.where("i.slug", integration);
  const rows = await query.orderBy([{ column: "i.slug" }, { column: "c.external_id" }]).select("c.*", "i.slug");
  return rows.map(toView);
}

/**
 * Deletes the connection of the caller's environment; first asks the provider to revoke its refresh
 * (or access) token where the provider has a revocation endpoint (best effort: the row goes either way).
 */
export async function revokeConnection(db: Knex, keyring: Keyring | null | undefined, env: EnvironmentPrincipal, id: string): Promise<{ revoked: boolean; providerRevoked: boolean }> {
  const row = (await db("connections as c").join("integrations as i", "i.id", "c.integration_id").where({ "c.id": id, "i.environment_id": env.environmentId }).first("c.*")) as ConnectionRow | undefined;
  if (!row) return { revoked: false, providerRevoked: false };
  let providerRevoked = false;
  const integrationRow = (await findIntegrationRow(db, { id: row.integration_id }))!;
  if (integrationRow.kind === "oauth" && integrationRow.metadata.revocation_endpoint) {
    try {
      const integration = await loadIntegration(db, keyring, env.projectId, integrationRow);
      const dataKey = (await dataKeyFor(db, keyring, env.projectId, { create: false }))!;
      const token = row.refresh_token_encrypted
        ? decryptSecret(dataKey, env.projectId, place(row, "refresh_token"), row.refresh_token_encrypted)
        : decryptSecret(dataKey, env.projectId, place(row, "access_token"), row.access_token_encrypted);
      await oidc.tokenRevocation(clientConfig(integration), token);
      providerRevoked = true;
    } catch {
      providerRevoked = false;
    }
  }
  const deleted = await db("connections").where({ id: row.id }).del();
  return { revoked: deleted > 0, providerRevoked };
}

/** Refresh when less than a quarter of the token's life or a minute is left, whichever is shorter. */
export function needsRefresh(row: Pick<ConnectionRow, "expires_at" | "obtained_at" | "refresh_token_encrypted">, now: Date): boolean {
  if (!row.expires_at || !row.refresh_token_encrypted) return false;
  const life = row.expires_at.getTime() - row.obtained_at.getTime();
  const margin = Math.min(60_000, Math.max(0, life / 4));
  return row.expires_at.getTime() - now.getTime() <= margin;
}

/**
 * Marks a connection broken because the provider refused its access token (GitHub's 401 "Bad
 * credentials": the user revoked the app). Callers get CONNECTION_BROKEN until it is connected again.
 */
export async function markConnectionBroken(db: Knex, connectionId: string, reason: string): Promise<void> {
  await db("connections").where({ id: connectionId, status: "active" }).update({ status: "broken", broken_reason: reason, updated_at: db.fn.now() });
}

export const brokenError = (slug: string, externalId: string, reason: string | null) =>
  new StasisError(
    "CONNECTION_BROKEN",
    409,
    `the connection to ${slug}${externalId ? ` of externalId ${externalId}` : ""} is broken: ${reason ?? "its refresh token no longer works"}. Connect the account again (dashboard Connect, or a new Connect link)`,
  );

// Callers on this replica share one locked refresh per connection (the row lock orders replicas):
// a burst of callers holds one pool connection, not one each.
const inflight = new Map<string, Promise<unknown>>();
function singleFlight<T>(key: string, work: () => Promise<T>): Promise<T> {
  const running = inflight.get(key) as Promise<T> | undefined;
  if (running) return running;
  const started = work().finally(() => inflight.delete(key));
  inflight.set(key, started);
  return started;
}

/**
 * A fresh access token of the environment's connection. Stale tokens are refreshed under a row lock
 * (`SELECT … FOR UPDATE`): concurrent callers on any replica wait for the one refresh and read its
 * result. A refresh the provider answers with `invalid_grant` marks the connection broken.
 */
export async function getToken(db: Knex, keyring: Keyring | null | undefined, env: TokenEnv, slug: string, externalId?: string): Promise<TokenResponse> {
  const { connectionId: _id, ...token } = await readToken(db, keyring, env, slug, externalId);
  return token;
}

export type TokenEnv = Pick<EnvironmentPrincipal, "environmentId" | "projectId" | "project" | "environment">;

/** A task's getToken: also records that the run holds this connection's token, so its log lines are redacted server-side too. */
export async function getTokenForRun(db: Knex, keyring: Keyring | null | undefined, env: TokenEnv, runId: string, slug: string, externalId?: string): Promise<TokenResponse> {
  const { connectionId, ...token } = await readToken(db, keyring, env, slug, externalId);
  await db("run_connections").insert({ run_id: runId, connection_id: connectionId }).onConflict(["run_id", "connection_id"]).ignore();
  return token;
}

/** The current tokens of the connections a run was handed, as `[name, value]` for the log redactor. */
export async function connectionSecretsOfRun(db: Knex, keyring: Keyring, projectId: string, runId: string): Promise<Array<[string, string]>> {
  const rows = (await db("run_connections as r").join("connections as c", "c.id", "r.connection_id").join("integrations as i", "i.id", "c.integration_id").where("r.run_id", runId).select("c.*", "i.slug")) as Array<ConnectionRow & { slug: string }>;
  if (rows.length === 0) return [];
  const dataKey = (await dataKeyFor(db, keyring, projectId, { create: false }))!;
  return rows.flatMap((row) => [
    [`connection:${row.slug}`, decryptSecret(dataKey, projectId, place(row, "access_token"), row.access_token_encrypted)] as [string, string],
    ...(row.refresh_token_encrypted ? [[`connection:${row.slug}`, decryptSecret(dataKey, projectId, place(row, "refresh_token"), row.refresh_token_encrypted)] as [string, string]] : []),
  ]);
}

/** `getToken` with the connection's id (what webhook subscriptions record). */
export async function readToken(db: Knex, keyring: Keyring | null | undefined, env: TokenEnv, slug: string, externalId?: string): Promise<TokenResponse & { connectionId: string }> {
  const integrationRow = await findIntegrationRow(db, { environmentId: env.environmentId, slug });
  if (!integrationRow) throw integrationNotFound(env as EnvironmentPrincipal, slug);
  const key = { integration_id: integrationRow.id, external_id: externalId ?? "" };
  const row = (await db("connections").where(key).first()) as ConnectionRow | undefined;
  if (!row) {
    throw new StasisError(
      "CONNECTION_NOT_FOUND",
      404,
      externalId
        ? `integration ${slug} has no connection for externalId ${externalId}: send that user a Connect link (connections.createConnectLink)`
        : `integration ${slug} has no team connection in ${env.project}/${env.environment}: connect it from the dashboard's Connections page`,
      { field: externalId ? "externalId" : "integration" },
    );
  }
  if (row.status === "broken") throw brokenError(slug, key.external_id, row.broken_reason);
  const dataKey = (await dataKeyFor(db, keyring, env.projectId, { create: false }))!;
  const answer = (r: ConnectionRow): TokenResponse & { connectionId: string } => ({
    connectionId: r.id,
    integration: slug,
    externalId: externalId ?? null,
    accessToken: decryptSecret(dataKey, env.projectId, place(r, "access_token"), r.access_token_encrypted),
    tokenType: "Bearer",
    expiresAt: r.expires_at?.toISOString() ?? null,
    scopes: r.scopes,
    account: r.account,
  });
  if (!needsRefresh(row, new Date())) return answer(row);

  // The provider is asked with no database connection held: a refresh lease on the row (refresh-token.ts) makes it one refresh across replicas.
  const outcome = await singleFlight(row.id, () => refreshUnderLease<ConnectionRow>(db, keyring, env.projectId, integrationRow, dataKey, row.id, needsRefresh));
  if ("gone" in outcome) throw new StasisError("CONNECTION_NOT_FOUND", 404, `the connection to ${slug} was revoked while its token was being read`);
  if ("broken" in outcome) throw brokenError(slug, key.external_id, outcome.broken ?? null);
  return answer(outcome.row);
}

export type { IntegrationRow };
