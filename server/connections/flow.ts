import type { Knex } from "knex";
import * as oidc from "openid-client";
import { randomToken, sha256, type EnvironmentPrincipal } from "../auth.ts";
import { StasisError } from "../errors.ts";
import { decryptSecret, encryptSecret } from "../secrets/crypto.ts";
import { dataKeyFor } from "../secrets/data-keys.ts";
import type { Keyring } from "../secrets/keyring.ts";
import { findIntegrationRow, integrationNotFound, loadIntegration, type IntegrationRow, type LoadedIntegration } from "./integrations.ts";
import { clientConfig, oauthErrorCode } from "./oauth-client.ts";
import { saveConnection } from "./store.ts";

/** How long a started authorization may take (login, consent) before its state expires. */
export const STATE_TTL_SECONDS = 10 * 60;
export const CALLBACK_PATH = "/api/v1/connect/callback";
export const LINK_PATH = "/api/v1/connect/links";

/** A connect that failed: the page the browser gets says which problem, in words. */
export class ConnectError extends Error {
  constructor(
    readonly code: string,
    readonly title: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const statePlace = (stateHash: string) => ["state", stateHash, "code_verifier"] as const;

async function projectOf(db: Knex, integration: IntegrationRow): Promise<string> {
  return ((await db("environments").where({ id: integration.environment_id }).first("project_id")) as { project_id: string }).project_id;
}

/** Starts authorization code + PKCE: a single-use state row (verifier encrypted), and the provider URL to send the browser to. */
async function authorizationUrl(db: Knex, keyring: Keyring | null | undefined, publicUrl: string, projectId: string, integration: IntegrationRow, externalId: string, redirectTo: string | null): Promise<string> {
  if (integration.kind !== "oauth") throw new StasisError("BAD_REQUEST", 400, `integration ${integration.slug} takes an API key, not OAuth: create a Connect link for it`, { field: "integration" });
  const loaded = await loadIntegration(db, keyring, projectId, integration);
  const config = clientConfig(loaded);
  const state = oidc.randomState();
  const verifier = oidc.randomPKCECodeVerifier();
  const stateHash = sha256(state);
  const dataKey = (await dataKeyFor(db, keyring, projectId, { create: true }))!;
  await db("oauth_states").insert({
    state_hash: stateHash,
    integration_id: integration.id,
    external_id: externalId,
    redirect_to: redirectTo,
    verifier_encrypted: encryptSecret(dataKey, projectId, statePlace(stateHash), verifier),
    expires_at: db.raw("now() + make_interval(secs => ?)", [STATE_TTL_SECONDS]),
  });
  const params: Record<string, string> = {
    redirect_uri: `${publicUrl}${CALLBACK_PATH}`,
    state,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  };
  if (integration.scopes.length > 0) params.scope = integration.scopes.join(" ");
  if (integration.scopes.includes("offline_access")) params.prompt = "consent";
  return oidc.buildAuthorizationUrl(config, params).href;
}

/** The dashboard's Connect button (or the API): the team's connection, or one for an externalId. */
export async function startConnect(db: Knex, keyring: Keyring | null | undefined, publicUrl: string, env: EnvironmentPrincipal, slug: string, externalId?: string, redirectTo?: string): Promise<string> {
  const integration = await findIntegrationRow(db, { environmentId: env.environmentId, slug });
  if (!integration) throw integrationNotFound(env, slug);
  return await authorizationUrl(db, keyring, publicUrl, env.projectId, integration, externalId ?? "", redirectTo ?? `${publicUrl}/connections?connected=${encodeURIComponent(slug)}`);
}

/**
 * The provider's redirect back. The state row is claimed first (compare-and-set on `used_at`), so a
 * replay finds it used; then the code is exchanged (openid-client checks state, PKCE, iss and the ID
 * token). Nothing is stored unless a refresh token came back (or the token never expires).
 */
export async function finishConnect(db: Knex, keyring: Keyring | null | undefined, publicUrl: string, currentUrl: URL): Promise<string> {
  const state = currentUrl.searchParams.get("state");
  if (!state) throw new ConnectError("STATE_MISSING", "Missing state", "The provider's redirect has no state parameter, so it cannot be matched to a Connect that Stasis started.");
  const stateHash = sha256(state);
  const [claimed] = await db("oauth_states").where({ state_hash: stateHash }).whereNull("used_at").update({ used_at: db.fn.now() }).returning(["*", db.raw("expires_at < now() AS expired")]);
  if (!claimed) {
    const known = await db("oauth_states").where({ state_hash: stateHash }).first("used_at");
    if (known) throw new ConnectError("STATE_USED", "This sign-in was already used", "This authorization response was already used once (a replay, or the page was reloaded). Start the Connect again.");
    throw new ConnectError("STATE_UNKNOWN", "Unknown state", "The state parameter does not match any Connect that Stasis started: the link was altered, or it belongs to another server.");
  }
  if (claimed.expired) throw new ConnectError("STATE_EXPIRED", "This sign-in expired", `The Connect was started more than ${STATE_TTL_SECONDS / 60} minutes ago. Start it again.`);
  const providerError = currentUrl.searchParams.get("error");
  if (providerError) {
    const description = currentUrl.searchParams.get("error_description");
    throw new ConnectError("PROVIDER_ERROR", "The provider did not grant access", `The provider answered with error ${providerError}${description ? ` (${description})` : ""}.`);
  }
  const integration = await findIntegrationRow(db, { id: claimed.integration_id });
  if (!integration) throw new ConnectError("INTEGRATION_NOT_FOUND", "Integration removed", "The integration this Connect was for was removed meanwhile.");
  const projectId = await projectOf(db, integration);
  const loaded = await loadIntegration(db, keyring, projectId, integration);
  const dataKey = (await dataKeyFor(db, keyring, projectId, { create: false }))!;
  const verifier = decryptSecret(dataKey, projectId, statePlace(stateHash), claimed.verifier_encrypted);
  // openid-client compares the redirect it was given with the one registered: rebuild it on the public URL.
  const callback = new URL(`${publicUrl}${CALLBACK_PATH}${currentUrl.search}`);
  let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
  try {
    tokens = await oidc.authorizationCodeGrant(clientConfig(loaded), callback, { pkceCodeVerifier: verifier, expectedState: state, idTokenExpected: integration.scopes.includes("openid") });
  } catch (error) {
    const code = oauthErrorCode(error);
    throw new ConnectError("TOKEN_EXCHANGE_FAILED", "The provider refused the sign-in", `Exchanging the authorization code failed: ${code ?? (error as Error).message}.`, 502);
  }
  if (!tokens.refresh_token && typeof tokens.expires_in === "number") {
    throw new ConnectError(
      "NO_REFRESH_TOKEN",
      "The provider returned no refresh token",
      `${integration.slug} issued an access token that expires in ${tokens.expires_in} s but no refresh token, so Stasis could not keep it fresh. Ask for offline access (e.g. the offline_access scope) or enable refresh tokens for the OAuth app.`,
    );
  }
  const account = await accountOf(loaded, tokens);
  await saveConnection(db, keyring, projectId, integration.id, claimed.external_id, {
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token ?? null,
    expiresInSeconds: typeof tokens.expires_in === "number" ? tokens.expires_in : null,
    scopes: tokens.scope ? tokens.scope.split(" ").filter(Boolean) : integration.scopes,
    account,
  });
  return claimed.redirect_to ?? `${publicUrl}/connections`;
}

/** Who connected: the ID token's or userinfo's email / username / subject (best effort; null when the provider says nothing). */
async function accountOf(integration: LoadedIntegration, tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>): Promise<string | null> {
  const claims = tokens.claims();
  const pick = (c: Record<string, unknown> | undefined) => (c?.email ?? c?.preferred_username ?? c?.login ?? null) as string | null;
  if (pick(claims)) return pick(claims);
  if (claims?.sub && integration.row.metadata.userinfo_endpoint) {
    try {
      return pick(await oidc.fetchUserInfo(clientConfig(integration), tokens.access_token, claims.sub)) ?? claims.sub;
    } catch {
      return claims.sub;
    }
  }
  return claims?.sub ?? null;
}

/** A one-time link for one of the app's users; only its hash is stored. */
export async function createConnectLink(db: Knex, publicUrl: string, env: EnvironmentPrincipal, request: { integration: string; externalId: string; redirectTo: string; expiresInSeconds: number }): Promise<{ url: string; expiresAt: string }> {
  const integration = await findIntegrationRow(db, { environmentId: env.environmentId, slug: request.integration });
  if (!integration) throw integrationNotFound(env, request.integration);
  const token = `cl_${randomToken(24)}`;
  const [row] = await db("connect_links")
    .insert({
      token_hash: sha256(token),
      integration_id: integration.id,
      external_id: request.externalId,
      redirect_to: request.redirectTo,
      expires_at: db.raw("now() + make_interval(secs => ?)", [request.expiresInSeconds]),
    })
    .returning("expires_at");
  return { url: `${publicUrl}${LINK_PATH}/${token}`, expiresAt: (row.expires_at as Date).toISOString() };
}

interface LinkRow {
  integration_id: string;
  external_id: string;
  redirect_to: string;
  expired: boolean;
}

/** Claims the link (compare-and-set on `used_at`); used twice or expired → a page saying which. */
async function claimLink(db: Knex, token: string, claim: boolean): Promise<LinkRow> {
  const hash = sha256(token);
  const query = db("connect_links").where({ token_hash: hash }).whereNull("used_at");
  const fields = ["integration_id", "external_id", "redirect_to", db.raw("expires_at < now() AS expired")];
  const row = (claim ? (await query.update({ used_at: db.fn.now() }).returning(fields))[0] : await query.first(fields)) as LinkRow | undefined;
  if (!row) {
    const known = await db("connect_links").where({ token_hash: hash }).first("used_at");
    if (known) throw new ConnectError("LINK_USED", "This Connect link was already used", "Each Connect link works once. Ask the app for a new one.");
    throw new ConnectError("LINK_UNKNOWN", "Unknown Connect link", "This Connect link does not exist (mistyped, or it belongs to another server).", 404);
  }
  if (row.expired) throw new ConnectError("LINK_EXPIRED", "This Connect link expired", "The link is past its expiry time. Ask the app for a new one.");
  return row;
}

/** Opening a link: OAuth → claimed and redirected to the provider; API key → the form (claimed when it is sent). */
export async function openConnectLink(db: Knex, keyring: Keyring | null | undefined, publicUrl: string, token: string): Promise<{ redirect: string } | { form: string }> {
  const peek = await claimLink(db, token, false);
  const integration = (await findIntegrationRow(db, { id: peek.integration_id }))!;
  if (integration.kind === "api_key") return { form: integration.slug };
  const link = await claimLink(db, token, true);
  return { redirect: await authorizationUrl(db, keyring, publicUrl, await projectOf(db, integration), integration, link.external_id, link.redirect_to) };
}

/** The API-key form of a link: claims the link and stores the key as the connection's token. */
export async function submitApiKey(db: Knex, keyring: Keyring | null | undefined, token: string, apiKey: string): Promise<string> {
  if (!apiKey.trim() || apiKey.length > 4000) throw new ConnectError("API_KEY_INVALID", "No API key", "Enter the API key (at most 4000 characters).");
  const link = await claimLink(db, token, true);
  const integration = (await findIntegrationRow(db, { id: link.integration_id }))!;
  await saveConnection(db, keyring, await projectOf(db, integration), integration.id, link.external_id, { accessToken: apiKey.trim(), refreshToken: null, expiresInSeconds: null, scopes: [], account: null });
  return link.redirect_to;
}
