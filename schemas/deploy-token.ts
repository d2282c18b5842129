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

/** `POST /api/v1/admin/projects/:project/deploy-tokens` (the GitHub App): `repository` is checked against the project's link. */
export const AdminDeployTokenRequest = z
  .object({
    environment: EnvironmentSlug,
    /** `owner/name` the deploy is built from; refused when the project is linked to another repository. */
    repository: z.string().min(3).optional(),
  })
  .strict();
export type AdminDeployTokenRequest = z.infer<typeof AdminDeployTokenRequest>;

const GitRef = z.string().regex(/^refs\/(heads|tags)\/[^\s~^:?[\\]+$/, "a ref is refs/heads/<branch> or refs/tags/<tag>, optionally ending in *");
/** `PUT /api/v1/admin/projects/:project/deploy-policy`: which refs the OIDC exchange lets deploy which environment. */
export const DeployPolicyRequest = z
  .object({
    /** Production deploys on a push to this branch (default `main`). */
    defaultBranch: z.string().regex(/^[^\s~^:?*[\\]+$/, "a branch name, e.g. main").max(255).optional(),
    /** More refs per non-preview environment: `{"production": ["refs/tags/v*"], "staging": ["refs/heads/develop"]}`. */
    refs: z.partialRecord(z.enum(["production", "staging", "development"], { error: "refs name production, staging or development (previews are deployed by pull_request tokens only)" }), z.array(GitRef).max(50)).optional(),
  })
  .strict();
export const DeployPolicyView = z.object({ project: z.string(), defaultBranch: z.string(), refs: z.record(z.string(), z.array(z.string())) });
