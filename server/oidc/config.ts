import { z } from "zod";

export const GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com";

export interface OidcConfig {
  /** The trusted issuer (`iss`); GitHub Actions by default. */
  issuer: string;
  /** Where the issuer's signing keys are: `<issuer>/.well-known/jwks` by default. */
  jwksUrl: string;
  /** The `aud` a token must carry (the action's `oidc-audience` input). */
  audience: string;
  /** Lifetime of a minted deploy token. */
  deployTokenTtlSeconds: number;
}

const EnvConfig = z.object({
  STASIS_OIDC_ISSUER: z.url().default(GITHUB_ACTIONS_ISSUER),
  STASIS_OIDC_JWKS_URL: z.url().optional(),
  STASIS_OIDC_AUDIENCE: z.string().min(1).default("stasis"),
  STASIS_DEPLOY_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(24 * 3600).default(15 * 60),
});

/** Parsed once when the server starts; a bad value names the variable. */
export function oidcConfigFromEnv(env: NodeJS.ProcessEnv = process.env): OidcConfig {
  const parsed = EnvConfig.safeParse(Object.fromEntries(Object.keys(EnvConfig.shape).map((k) => [k, env[k] === "" ? undefined : env[k]])));
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${String(i.path[0])}: ${i.message}`).join("; "));
  const issuer = parsed.data.STASIS_OIDC_ISSUER.replace(/\/+$/, "");
  return {
    issuer,
    jwksUrl: parsed.data.STASIS_OIDC_JWKS_URL ?? `${issuer}/.well-known/jwks`,
    audience: parsed.data.STASIS_OIDC_AUDIENCE,
    deployTokenTtlSeconds: parsed.data.STASIS_DEPLOY_TOKEN_TTL_SECONDS,
  };
}
