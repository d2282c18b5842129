import type { Knex } from "knex";
import type { AddIntegrationRequest, IntegrationView } from "../../schemas/index.ts";
import type { EnvironmentPrincipal } from "../auth.ts";
import { conflict, StasisError } from "../errors.ts";
import { decryptSecret, encryptSecret } from "../secrets/crypto.ts";
import { dataKeyFor } from "../secrets/data-keys.ts";
import type { Keyring } from "../secrets/keyring.ts";
import { assertSecure, discoverMetadata, type ProviderMetadata } from "./oauth-client.ts";

/** Endpoints of the providers Stasis knows by name (their OAuth apps are not OpenID Providers, or need no discovery). */
const PRESETS: Record<string, ProviderMetadata> = {
  github: { authorization_endpoint: "https://github.com/login/oauth/authorize", token_endpoint: "https://github.com/login/oauth/access_token" },
  slack: { authorization_endpoint: "https://slack.com/oauth/v2/authorize", token_endpoint: "https://slack.com/api/oauth.v2.access" },
};
const PRESET_ISSUERS: Record<string, string> = { google: "https://accounts.google.com" };
/** REST APIs webhook subscriptions call (GitHub Enterprise Server: pass apiUrl https://<host>/api/v3). */
const DEFAULT_API_URLS: Record<string, string> = { github: "https://api.github.com" };

export interface IntegrationRow {
  id: string;
  environment_id: string;
  slug: string;
  kind: "oauth" | "api_key";
  provider: string;
  metadata: ProviderMetadata;
  scopes: string[];
  client_id_encrypted: Buffer | null;
  client_secret_encrypted: Buffer | null;
  created_at: Date;
}

/** An integration with its client credentials decrypted (only in memory, only while used). */
export interface LoadedIntegration {
  row: IntegrationRow;
  projectId: string;
  clientId: string | null;
  clientSecret: string | null;
}

export const integrationNotFound = (env: EnvironmentPrincipal, slug: string) =>
  new StasisError("INTEGRATION_NOT_FOUND", 404, `there is no integration ${slug} in ${env.project}/${env.environment} (stasis integrations list shows the ones there are)`, { field: "integration" });

const place = (row: { environment_id: string; slug: string }, field: string) => ["integration", row.environment_id, row.slug, field] as const;

export async function addIntegration(db: Knex, keyring: Keyring | null | undefined, env: EnvironmentPrincipal, request: AddIntegrationRequest): Promise<IntegrationView> {
  const kind = request.provider === "api_key" ? "api_key" : "oauth";
  let metadata: ProviderMetadata = {};
  if (kind === "oauth") {
    const issuer = request.issuer ?? PRESET_ISSUERS[request.provider];
    if (issuer && !request.authorizationEndpoint) metadata = await discoverMetadata(issuer, request.clientId!, request.clientSecret);
    else metadata = { ...(PRESETS[request.provider] ?? {}), ...(issuer ? { issuer } : {}) };
    if (request.authorizationEndpoint) metadata.authorization_endpoint = request.authorizationEndpoint;
    if (request.tokenEndpoint) metadata.token_endpoint = request.tokenEndpoint;
    if (request.revocationEndpoint) metadata.revocation_endpoint = request.revocationEndpoint;
    const apiUrl = request.apiUrl ?? DEFAULT_API_URLS[request.provider];
    if (apiUrl) {
      assertSecure(apiUrl, "apiUrl");
      metadata.api_url = apiUrl.replace(/\/$/, "");
    }
  }
  return await db.transaction(async (trx) => {
    const dataKey = (await dataKeyFor(trx, keyring, env.projectId, { create: true }))!;
    const where = { environment_id: env.environmentId, slug: request.slug };
    const inserted = await trx("integrations")
      .insert({
        ...where,
        kind,
        provider: request.provider,
        metadata: JSON.stringify(metadata),
        scopes: request.scopes,
        client_id_encrypted: request.clientId ? encryptSecret(dataKey, env.projectId, place(where, "client_id"), request.clientId) : null,
        client_secret_encrypted: request.clientSecret ? encryptSecret(dataKey, env.projectId, place(where, "client_secret"), request.clientSecret) : null,
      })
      .onConflict(["environment_id", "slug"])
      .ignore()
      .returning("*");
    if (inserted.length === 0) throw conflict(`integration ${request.slug} already exists in ${env.project}/${env.environment}: remove it first to change it`, "INTEGRATION_EXISTS");
    return toView(inserted[0] as IntegrationRow, 0);
  });
}

function toView(row: IntegrationRow, connections: number): IntegrationView {
  return {
    slug: row.slug,
    provider: row.provider,
    kind: row.kind,
    issuer: row.metadata.issuer ?? null,
    authorizationEndpoint: row.metadata.authorization_endpoint ?? null,
    tokenEndpoint: row.metadata.token_endpoint ?? null,
    apiUrl: row.metadata.api_url ?? null,
    scopes: row.scopes,
    clientSecretSet: row.client_secret_encrypted !== null,
    connections,
    createdAt: row.created_at.toISOString(),
  };
}

export async function listIntegrations(db: Knex, env: EnvironmentPrincipal): Promise<IntegrationView[]> {
  const rows = (await db("integrations as i")
    .where("i.environment_id", env.environmentId)
    .select("i.*", db.raw("(SELECT count(*)::int FROM connections c WHERE c.integration_id = i.id) AS connection_count"))
    .orderBy("i.slug")) as Array<IntegrationRow & { connection_count: number }>;
  return rows.map((row) => toView(row, row.connection_count));
}

export async function removeIntegration(db: Knex, env: EnvironmentPrincipal, slug: string): Promise<{ deleted: boolean; connectionsDeleted: number }> {
  return await db.transaction(async (trx) => {
    const row = await trx("integrations").where({ environment_id: env.environmentId, slug }).forUpdate().first("id");
    if (!row) return { deleted: false, connectionsDeleted: 0 };
    const connectionsDeleted = await trx("connections").where({ integration_id: row.id }).del();
    await trx("integrations").where({ id: row.id }).del();
    return { deleted: true, connectionsDeleted };
  });
}

export async function findIntegrationRow(db: Knex | Knex.Transaction, where: { environmentId: string; slug: string } | { id: string }): Promise<IntegrationRow | null> {
  const query = "id" in where ? db("integrations").where({ id: where.id }) : db("integrations").where({ environment_id: where.environmentId, slug: where.slug });
  return ((await query.first()) as IntegrationRow | undefined) ?? null;
}

export async function loadIntegration(db: Knex | Knex.Transaction, keyring: Keyring | null | undefined, projectId: string, row: IntegrationRow): Promise<LoadedIntegration> {
  const needsKey = row.client_id_encrypted || row.client_secret_encrypted;
  const dataKey = needsKey ? (await dataKeyFor(db, keyring, projectId, { create: false }))! : null;
  return {
    row,
    projectId,
    clientId: row.client_id_encrypted && dataKey ? decryptSecret(dataKey, projectId, place(row, "client_id"), row.client_id_encrypted) : null,
    clientSecret: row.client_secret_encrypted && dataKey ? decryptSecret(dataKey, projectId, place(row, "client_secret"), row.client_secret_encrypted) : null,
  };
}
