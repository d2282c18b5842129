import * as oidc from "openid-client";
import { StasisError } from "../errors.ts";
import type { LoadedIntegration } from "./integrations.ts";

/** What Stasis keeps of a provider's metadata: discovered once when the integration is added, or given. */
export interface ProviderMetadata {
  issuer?: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
  revocation_endpoint?: string;
  userinfo_endpoint?: string;
  jwks_uri?: string;
  authorization_response_iss_parameter_supported?: boolean;
  id_token_signing_alg_values_supported?: string[];
  /** Not OAuth metadata: the provider's REST API base (GitHub's, for webhook subscriptions). */
  api_url?: string;
}

const KEPT = ["issuer", "authorization_endpoint", "token_endpoint", "revocation_endpoint", "userinfo_endpoint", "jwks_uri", "authorization_response_iss_parameter_supported", "id_token_signing_alg_values_supported"] as const;

/** Plain http only for a provider on this machine (a local test provider); anywhere else it must be https. */
function isLoopback(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === "http:" && (hostname === "127.0.0.1" || hostname === "localhost" || hostname === "[::1]");
}

export function assertSecure(url: string, what: string): void {
  if (new URL(url).protocol !== "https:" && !isLoopback(url)) throw new StasisError("BAD_REQUEST", 400, `${what} must be https (plain http only for a provider on 127.0.0.1/localhost)`, { field: what });
}

/** OpenID Connect discovery (openid-client): the provider's endpoints, or a 400 naming why not. */
export async function discoverMetadata(issuer: string, clientId: string, clientSecret: string | undefined): Promise<ProviderMetadata> {
  assertSecure(issuer, "issuer");
  try {
    const config = await oidc.discovery(new URL(issuer), clientId, clientSecret, undefined, isLoopback(issuer) ? { execute: [oidc.allowInsecureRequests], timeout: 10 } : { timeout: 10 });
    const server = config.serverMetadata() as Record<string, unknown>;
    return Object.fromEntries(KEPT.filter((k) => server[k] !== undefined).map((k) => [k, server[k]])) as ProviderMetadata;
  } catch (error) {
    throw new StasisError("DISCOVERY_FAILED", 400, `could not read the OpenID Connect discovery document of ${issuer}: ${(error as Error).message}`, { field: "issuer" });
  }
}

/** The openid-client Configuration of an integration (no request: built from the stored metadata). */
export function clientConfig(integration: LoadedIntegration): oidc.Configuration {
  const m = integration.row.metadata;
  if (!m.authorization_endpoint || !m.token_endpoint || !integration.clientId) {
    throw new StasisError("INTEGRATION_INCOMPLETE", 409, `integration ${integration.row.slug} has no authorization endpoint, token endpoint or client id`);
  }
  for (const url of [m.authorization_endpoint, m.token_endpoint]) assertSecure(url, "endpoint");
  const server: oidc.ServerMetadata = { ...m, issuer: m.issuer ?? new URL(m.authorization_endpoint).origin } as oidc.ServerMetadata;
  const config = new oidc.Configuration(server, integration.clientId, integration.clientSecret ?? undefined, integration.clientSecret ? oidc.ClientSecretPost(integration.clientSecret) : oidc.None());
  if ([m.authorization_endpoint, m.token_endpoint, m.issuer ?? "https://x"].some(isLoopback)) oidc.allowInsecureRequests(config);
  config.timeout = 15;
  return config;
}

/** An OAuth error response from the provider (e.g. `invalid_grant`), or null for anything else. */
export function oauthErrorCode(error: unknown): string | null {
  if (error instanceof oidc.ResponseBodyError) return error.error;
  return null;
}
