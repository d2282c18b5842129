import type { FastifyRequest } from "fastify";
import type { Knex } from "knex";
import { DEPLOY_TOKEN_PREFIX, type DeployTokenResponse } from "../../schemas/deploy-token.ts";
import { randomToken, sha256, type EnvironmentPrincipal } from "../auth.ts";
import { conflict, forbidden, notFound, unauthorized } from "../errors.ts";

export interface TargetEnvironment {
  id: string;
  slug: string;
  project: string;
  archived: boolean;
}

export const isPreview = (slug: string) => slug.startsWith("preview/");

/**
 * The environment a deploy token is for. A missing `preview/…` environment is created (a pull
 * request's first deploy); any other environment must exist already.
 */
export async function ensureTargetEnvironment(db: Knex, project: { id: string; slug: string }, slug: string): Promise<TargetEnvironment> {
  if (isPreview(slug)) await db("environments").insert({ project_id: project.id, slug }).onConflict(["project_id", "slug"]).ignore();
  const row = await db("environments").where({ project_id: project.id, slug }).first("id", "slug", "archived_at");
  if (!row) throw notFound(`environment ${project.slug}/${slug} does not exist (only preview/… environments are created on first deploy)`, "environment");
  return { id: row.id, slug: row.slug, project: project.slug, archived: row.archived_at !== null };
}

export interface MintOptions {
  ttlSeconds: number;
  via: "oidc" | "api-key";
  /** Who asked, for the audit trail: the OIDC `sub`, or the API key's environment. */
  subject?: string;
}

export async function mintDeployToken(db: Knex, env: TargetEnvironment, options: MintOptions): Promise<DeployTokenResponse> {
  const token = `${DEPLOY_TOKEN_PREFIX}${randomToken(32)}`;
  const expiresAt = new Date(Date.now() + options.ttlSeconds * 1000);
  await db("deploy_tokens").insert({ environment_id: env.id, token_hash: sha256(token), issued_via: options.via, subject: options.subject ?? null, expires_at: expiresAt });
  // Housekeeping; a day's grace keeps "expired" answerable.
  await db("deploy_tokens").where("expires_at", "<", new Date(Date.now() - 24 * 3600 * 1000)).delete();
  return { token, project: env.project, environment: env.slug, expiresAt: expiresAt.toISOString(), archived: env.archived };
}

/** What a deploy token may call: the deploy API and archiving its own (preview) environment. */
const DEPLOY_TOKEN_ROUTES = /^\/api\/v1\/(deployments(\/.*)?|environments\/current\/archive)$/;

/**
 * The environment principal behind a deploy token, or a 401 that says why not. Called by the
 * server's auth for bearer tokens that start with `dt_`.
 */
export async function principalForDeployToken(db: Knex, token: string, request: FastifyRequest): Promise<EnvironmentPrincipal> {
  const row = await db("deploy_tokens as t")
    .join("environments as e", "e.id", "t.environment_id")
    .join("projects as p", "p.id", "e.project_id")
    .where("t.token_hash", sha256(token))
    .first("t.expires_at", "e.id as environment_id", "e.slug as environment", "p.id as project_id", "p.slug as project", "e.archived_at");
  if (!row) throw unauthorized("invalid deploy token");
  if (new Date(row.expires_at).getTime() <= Date.now()) throw unauthorized(`deploy token expired at ${new Date(row.expires_at).toISOString()}: mint a new one (run the workflow again)`);
  const route = request.routeOptions.url ?? "";
  if (!DEPLOY_TOKEN_ROUTES.test(route)) throw forbidden(`a deploy token may only deploy (and archive its preview environment); ${request.method} ${route || request.url} needs an environment API key`);
  if (row.archived_at !== null && route.startsWith("/api/v1/deployments")) throw conflict(`environment ${row.project}/${row.environment} is archived: it takes no new deployments`, "ENVIRONMENT_ARCHIVED");
  return { kind: "env", environmentId: row.environment_id, environment: row.environment, projectId: row.project_id, project: row.project, archived: row.archived_at !== null };
}

/** `owner/name`, from a claim or from what an admin typed (`https://github.com/Owner/Name.git`). */
export function normalizeRepository(value: string): string {
  return value
    .trim()
    .replace(/^https?:\/\/[^/]+\//i, "")
    .replace(/\.git$/i, "")
    .replace(/\/+$/, "")
    .toLowerCase();
}
