import { z } from "zod";

/** An integration's name in an environment: what code passes to `connections.getToken("…")`. */
export const IntegrationSlug = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "an integration name matches ^[a-z0-9][a-z0-9_-]{0,62}$ (lowercase, digits, - and _)");
/** The app's own id of one of its users; the team's own connection has none. */
export const ExternalId = z.string().min(1, "externalId is empty").max(200, "externalId is at most 200 characters");
const Scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, "a scope is one printable word without spaces or quotes");
const HttpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

/** Providers Stasis knows the endpoints of; any other OAuth 2.0 / OIDC provider by issuer or endpoints. */
export const KNOWN_PROVIDERS = ["github", "slack", "google", "oidc", "oauth2", "api_key"] as const;
export const ProviderName = z.enum(KNOWN_PROVIDERS);

export const AddIntegrationRequest = z
  .object({
    slug: IntegrationSlug,
    /** `oidc`: by `issuer` (discovery); `oauth2`: by endpoints; `github`/`slack`/`google`: preset; `api_key`: a key typed into a form. */
    provider: ProviderName,
    issuer: HttpUrl.optional(),
    authorizationEndpoint: HttpUrl.optional(),
    tokenEndpoint: HttpUrl.optional(),
    revocationEndpoint: HttpUrl.optional(),
    /** The provider's REST API (GitHub: default https://api.github.com; GitHub Enterprise Server: https://<host>/api/v3), for webhook subscriptions. */
    apiUrl: HttpUrl.optional(),
    clientId: z.string().min(1).max(500).optional(),
    clientSecret: z.string().min(1).max(2000).optional(),
    scopes: z.array(Scope).max(100).default([]),
  })
  .strict()
  .superRefine((value, ctx) => {
    if (value.provider === "api_key") return;
    if (!value.clientId) ctx.addIssue({ code: "custom", path: ["clientId"], message: `an OAuth integration needs clientId` });
    if (value.provider === "oidc" && !value.issuer) ctx.addIssue({ code: "custom", path: ["issuer"], message: "provider oidc needs issuer (its discovery document is read from <issuer>/.well-known/openid-configuration)" });
    if (value.provider === "oauth2" && (!value.authorizationEndpoint || !value.tokenEndpoint)) {
      ctx.addIssue({ code: "custom", path: ["tokenEndpoint"], message: "provider oauth2 needs authorizationEndpoint and tokenEndpoint" });
    }
  });
export type AddIntegrationRequest = z.infer<typeof AddIntegrationRequest>;

export const IntegrationView = z.object({
  slug: z.string(),
  provider: z.string(),
  kind: z.enum(["oauth", "api_key"]),
  issuer: z.string().nullable(),
  authorizationEndpoint: z.string().nullable(),
  tokenEndpoint: z.string().nullable(),
  apiUrl: z.string().nullable(),
  scopes: z.array(z.string()),
  /** The client secret is never returned; only whether one is stored. */
  clientSecretSet: z.boolean(),
  connections: z.number().int(),
  createdAt: z.string(),
});
export type IntegrationView = z.infer<typeof IntegrationView>;

export const IntegrationListResponse = z.object({ project: z.string(), environment: z.string(), data: z.array(IntegrationView) });
export const IntegrationParams = z.object({ slug: IntegrationSlug });
/** A webhook-subscription hook a revoke or integration removal could not delete at the provider (its row is gone; deliveries to it are refused). */
export const HookLeft = z.object({ subscription: z.string(), repository: z.string(), hookId: z.number().int(), reason: z.string() });
export type HookLeft = z.infer<typeof HookLeft>;

/** `hooksLeft`: webhook-subscription hooks that could not be deleted at the provider (see webhook-subscriptions.ts). */
export const DeleteIntegrationResponse = z.object({
  deleted: z.boolean(),
  connectionsDeleted: z.number().int(),
  subscriptionsDeleted: z.number().int(),
  hooksLeft: z.array(HookLeft),
});

export const ConnectionStatus = z.enum(["active", "broken"]);
export const ConnectionView = z.object({
  id: z.string(),
  integration: z.string(),
  externalId: z.string().nullable(),
  account: z.string().nullable(),
  scopes: z.array(z.string()),
  expiresAt: z.string().nullable(),
  lastRefreshAt: z.string().nullable(),
  status: ConnectionStatus,
  brokenReason: z.string().nullable(),
  createdAt: z.string(),
});
export type ConnectionView = z.infer<typeof ConnectionView>;
export const ConnectionListQuery = z.object({ integration: IntegrationSlug.optional() }).strict();
export const ConnectionListResponse = z.object({ project: z.string(), environment: z.string(), data: z.array(ConnectionView) });
export const ConnectionParams = z.object({ id: z.uuid("a connection id is a UUID") });
export const RevokeConnectionResponse = z.object({
  revoked: z.boolean(),
  providerRevoked: z.boolean(),
  /** Webhook subscriptions made with the connection: their hooks are deleted at the provider first. */
  subscriptionsDeleted: z.number().int(),
  hooksLeft: z.array(HookLeft),
});

/** Where the browser lands after granting: an absolute http(s) URL (the app's own page). */
export const RedirectTo = HttpUrl;

export const StartConnectRequest = z.object({ externalId: ExternalId.optional(), redirectTo: RedirectTo.optional() }).strict();
export const StartConnectResponse = z.object({ url: z.string() });

export const GetTokenRequest = z.object({ integration: IntegrationSlug, externalId: ExternalId.optional() }).strict();
export type GetTokenRequest = z.infer<typeof GetTokenRequest>;
export const TokenResponse = z.object({
  integration: z.string(),
  externalId: z.string().nullable(),
  accessToken: z.string(),
  tokenType: z.string(),
  expiresAt: z.string().nullable(),
  scopes: z.array(z.string()),
  account: z.string().nullable(),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

export const CreateConnectLinkRequest = z
  .object({ integration: IntegrationSlug, externalId: ExternalId, redirectTo: RedirectTo, expiresInSeconds: z.number().int().min(1).max(7 * 24 * 3600).default(3600) })
  .strict();
export type CreateConnectLinkRequest = z.input<typeof CreateConnectLinkRequest>;
export const ConnectLinkResponse = z.object({ url: z.string(), expiresAt: z.string() });
export type ConnectLinkResponse = z.infer<typeof ConnectLinkResponse>;
