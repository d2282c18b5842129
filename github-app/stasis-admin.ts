import { callStasisApi } from "../builder/index.ts";
import type { DeployTokenResponse } from "../schemas/index.ts";

export interface StasisAdmin {
  /** Creates the project (idempotent) linked to `owner/name`. */
  ensureProject(project: string, repository: string): Promise<void>;
  /**
   * A short-lived deploy token for the environment (a missing `preview/…` one is created), for a
   * build of `repository`: refused (409 PROJECT_LINKED_ELSEWHERE) when the project is linked to another one.
   */
  deployToken(project: string, environment: string, repository: string): Promise<DeployTokenResponse>;
  archive(project: string, environment: string): Promise<void>;
  /** Sets the deploy policy's default branch (production deploys from the Action's OIDC exchange); the refs an admin listed stay. */
  setDefaultBranch(project: string, branch: string): Promise<void>;
}

/** The Stasis admin API, called with the admin token (never logged). */
export function createStasisAdmin(options: { apiUrl: string; adminToken: string }): StasisAdmin {
  const call = <T>(method: string, path: string, body?: unknown) => callStasisApi<T>(options.apiUrl, options.adminToken, method, path, body);
  const project = (slug: string) => `/api/v1/admin/projects/${encodeURIComponent(slug)}`;
  return {
    async ensureProject(slug, repository) {
      await call("POST", "/api/v1/admin/projects", { slug, repository });
    },
    deployToken: (slug, environment, repository) => call<DeployTokenResponse>("POST", `${project(slug)}/deploy-tokens`, { environment, repository }),
    async archive(slug, environment) {
      await call("POST", `${project(slug)}/environments/${encodeURIComponent(environment)}/archive`);
    },
    async setDefaultBranch(slug, branch) {
      await call("PUT", `${project(slug)}/deploy-policy`, { defaultBranch: branch });
    },
  };
}
