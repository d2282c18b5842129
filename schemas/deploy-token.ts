import { z } from "zod";
import { EnvironmentSlug } from "./common.ts";

/** Short-lived deploy tokens start with this; only their sha256 is stored. */
export const DEPLOY_TOKEN_PREFIX = "dt_";

/** `POST /api/v1/auth/oidc/exchange`: a CI's OIDC token (GitHub Actions) for a deploy token. */
export const OidcExchangeRequest = z
  .object({
    token: z.string().min(1, "token is the OIDC JWT from the CI"),
    environment: EnvironmentSlug,
    /** Needed only when several projects are linked to the token's repository. */
    project: z.string().min(1).optional(),
  })
  .strict();
export type OidcExchangeRequest = z.infer<typeof OidcExchangeRequest>;

/** `POST /api/v1/auth/deploy-tokens` with an environment API key: a deploy token for that or a preview environment. */
export const DeployTokenRequest = z.object({ environment: EnvironmentSlug }).strict();
export type DeployTokenRequest = z.infer<typeof DeployTokenRequest>;

export const DeployTokenResponse = z.object({
  token: z.string(),
  project: z.string(),
  environment: EnvironmentSlug,
  expiresAt: z.string(),
  /** The environment is archived: the token can archive it (again) but not deploy to it. */
  archived: z.boolean(),
});
export type DeployTokenResponse = z.infer<typeof DeployTokenResponse>;
