import { StasisError } from "../errors.ts";
import type { CiClaims } from "./verify-oidc-token.ts";

/** What a project lets CI deploy (projects.default_branch / deploy_refs). */
export interface DeployPolicy {
  /** Production deploys on a push to this branch. NULL in the database means `main`. */
  defaultBranch: string;
  /** More refs per environment: exact (`refs/tags/v1`) or a prefix ending in `*` (`refs/tags/v*`). */
  refs: Record<string, string[]>;
}

export const DEFAULT_BRANCH = "main";

const refused = (rule: string, message: string) => new StasisError("OIDC_REF_NOT_ALLOWED", 403, `OIDC token refused by rule "${rule}": ${message}`);

const matches = (ref: string, pattern: string) => (pattern.endsWith("*") ? ref.startsWith(pattern.slice(0, -1)) : ref === pattern);

/** `refs/pull/7/merge` (or `/head`) → 7. */
export function pullNumberOf(ref: string | undefined): number | null {
  const m = /^refs\/pull\/(\d+)\/(merge|head)$/.exec(ref ?? "");
  return m ? Number(m[1]) : null;
}

/**
 * The OIDC exchange is an allow-list; anything not allowed here is refused, naming the rule:
 *
 * - `pull-request-own-preview`: a `pull_request` token deploys only `preview/pr-<n>`, n taken
 *   from its `ref` claim (`refs/pull/<n>/merge`);
 * - `no-pull-request-target`: `pull_request_target` tokens carry the base branch's ref, not the
 *   pull request's, so they cannot be tied to a preview and are refused;
 * - `previews-from-pull-requests`: other events do not deploy previews;
 * - `push-to-listed-ref`: any other environment takes only a `push` (not `workflow_dispatch`,
 *   `schedule`, `release`…) whose `ref` is the default branch (production only) or a ref the
 *   project lists for that environment; tags only when listed.
 */
export function checkOidcDeploy(claims: Pick<CiClaims, "event_name" | "ref">, environment: string, policy: DeployPolicy, project: string): void {
  const event = claims.event_name ?? "(no event_name)";
  const ref = claims.ref ?? "(no ref)";
  if (event === "pull_request") {
    const n = pullNumberOf(claims.ref);
    if (n === null) throw refused("pull-request-own-preview", `a pull_request token must carry ref refs/pull/<n>/merge, this one has ${ref}`);
    if (environment !== `preview/pr-${n}`) throw refused("pull-request-own-preview", `a pull_request token of pull request #${n} may deploy only to preview/pr-${n}, not ${environment}`);
    return;
  }
  if (event === "pull_request_target") {
    throw refused("no-pull-request-target", `pull_request_target tokens carry the base branch's ref (${ref}), not the pull request's: deploy previews from on: pull_request`);
  }
  if (environment.startsWith("preview/")) throw refused("previews-from-pull-requests", `only a pull_request token deploys a preview environment; this is a ${event} token for ${ref}`);
  const listed = [...(environment === "production" ? [`refs/heads/${policy.defaultBranch}`] : []), ...(policy.refs[environment] ?? [])];
  const how = `list refs with PUT /api/v1/admin/projects/${project}/deploy-policy`;
  if (event !== "push") throw refused("push-to-listed-ref", `${environment} takes deploys only from a push (to ${listed.join(", ") || "no ref yet"}); this is a ${event} token for ${ref}`);
  if (!listed.some((pattern) => matches(ref, pattern))) {
    throw refused("push-to-listed-ref", `${environment} takes deploys only from a push to ${listed.join(", ") || "a listed ref (none yet)"}, not ${ref} (${how})`);
  }
}
