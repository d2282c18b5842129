// A real OpenID Provider (oidc-provider, certified) on 127.0.0.1 for the connection tests: short-lived
// access tokens, rotating refresh tokens, revocation, PKCE required. Login and consent are programmatic
// (the account and whether the user grants are set by the test), so a browser or a redirect-following
// fetch completes them without clicking.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Provider from "oidc-provider";

export interface TestProvider {
  issuer: string;
  provider: InstanceType<typeof Provider>;
  /** Who logs in next, and whether they grant access. */
  user: { account: string; deny: boolean };
  /** Requests to the token endpoint (code exchanges and refreshes). */
  tokenHits(): number;
  /** Makes the token endpoint answer this much later (a slow provider). */
  slow: { tokenMs: number };
  /** The newest refresh token issued to an account (for revoking it at the provider). */
  latestRefreshToken(account: string): string | undefined;
  /** Revokes a token through the provider's revocation endpoint (RFC 7009), as the account's admin would. */
  revoke(token: string): Promise<void>;
  close(): Promise<void>;
}

export const CLIENT = { id: "stasis-test", secret: "stasis-test-secret-0123456789abcdef" };
export const NO_REFRESH_CLIENT = { id: "stasis-no-refresh", secret: "stasis-no-refresh-secret-0123456789" };

export async function startTestProvider(options: { redirectUris: string[]; accessTokenTtlSeconds: number }): Promise<TestProvider> {
  const http: Server = createServer();
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const client = (c: { id: string; secret: string }) => ({
    client_id: c.id,
    client_secret: c.secret,
    redirect_uris: options.redirectUris,
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_post",
  });
  const provider = new Provider(issuer, {
    clients: [client(CLIENT), client(NO_REFRESH_CLIENT)],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    ttl: { AccessToken: options.accessTokenTtlSeconds, RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600, AuthorizationCode: 60, IdToken: 3600 },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx: unknown, c: { clientId: string }) => c.clientId !== NO_REFRESH_CLIENT.id,
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub, email: `${sub}@example.test` }) }),
    claims: { openid: ["sub"], email: ["email"] },
    scopes: ["openid", "offline_access", "email"],
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    cookies: { keys: ["oidc-test-cookie-key-0123456789abcdef"] },
  });
  const user = { account: "alice", deny: false };
  let hits = 0;
  const slow = { tokenMs: 0 };
  const refreshTokens = new Map<string, string>();
  provider.on("refresh_token.saved", (token: { accountId: string; jti: string }) => refreshTokens.set(token.accountId, token.jti));
  provider.use(async (ctx, next) => {
    if (ctx.path === "/token" && ctx.method === "POST") {
      hits++;
      if (slow.tokenMs) await new Promise((resolve) => setTimeout(resolve, slow.tokenMs));
    }
    await next();
  });
  const callback = provider.callback();
  http.on("request", (req, res) => {
    if (!req.url?.startsWith("/interaction/")) return void callback(req, res);
    void (async () => {
      const details = await provider.interactionDetails(req, res);
      if (user.deny) return await provider.interactionFinished(req, res, { error: "access_denied", error_description: "the user did not allow access" }, { mergeWithLastSubmission: false });
      if (details.prompt.name === "login") return await provider.interactionFinished(req, res, { login: { accountId: user.account } }, { mergeWithLastSubmission: false });
      const accountId = details.session!.accountId;
      const grant = details.grantId ? (await provider.Grant.find(details.grantId))! : new provider.Grant({ accountId, clientId: details.params.client_id as string });
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(" "));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    })().catch((error: Error) => {
      res.statusCode = 500;
      res.end(`interaction failed: ${error.message}`);
    });
  });
  return {
    issuer,
    provider,
    user,
    tokenHits: () => hits,
    slow,
    latestRefreshToken: (account) => refreshTokens.get(account),
    async revoke(token) {
      const response = await fetch(`${issuer}/token/revocation`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token, token_type_hint: "refresh_token", client_id: CLIENT.id, client_secret: CLIENT.secret }),
      });
      if (!response.ok) throw new Error(`revocation failed: ${response.status} ${await response.text()}`);
    },
    async close() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/**
 * A browser without a browser: follows redirects (keeping cookies per host) from `url` until a page
 * answers without one, or the next hop leaves the hosts given. Returns that last answer.
 */
export async function followRedirects(url: string, stayOn: string[]): Promise<{ status: number; url: string; body: string }> {
  const jar = new Map<string, Map<string, string>>();
  let current = url;
  for (let hop = 0; hop < 20; hop++) {
    const host = new URL(current).host;
    const cookies = jar.get(host) ?? new Map<string, string>();
    jar.set(host, cookies);
    const response = await fetch(current, { redirect: "manual", headers: cookies.size ? { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join("; ") } : {} });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair!.indexOf("=");
      cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    const location = response.headers.get("location");
    if (response.status < 300 || response.status >= 400 || !location) return { status: response.status, url: current, body: await response.text() };
    await response.body?.cancel();
    const next = new URL(location, current).href;
    if (!stayOn.some((origin) => next.startsWith(origin))) return { status: response.status, url: next, body: "" };
    current = next;
  }
  throw new Error(`more than 20 redirects from ${url}`);
}
