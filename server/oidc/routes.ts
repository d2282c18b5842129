import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { Knex } from "knex";
import { ApiErrorBody, EnvironmentView } from "../../schemas/index.ts";
import { z } from "zod";
import { DeployPolicyRequest, DeployPolicyView, DeployTokenRequest, DeployTokenResponse, OidcExchangeRequest } from "../../schemas/deploy-token.ts";
import type { Engine } from "../engine/context.ts";
import { badRequest, forbidden, notFound, StasisError } from "../errors.ts";
import { envOf } from "../http/auth-hook.ts";
import { oidcConfigFromEnv, type OidcConfig } from "./config.ts";
import { checkOidcDeploy, DEFAULT_BRANCH, type DeployPolicy } from "./deploy-rules.ts";
import { ensureTargetEnvironment, isPreview, mintDeployToken, normalizeRepository } from "./deploy-tokens.ts";
import { createOidcVerifier, type CiClaims } from "./verify-oidc-token.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody, 503: ApiErrorBody };
const wrongRepository = (message: string) => new StasisError("OIDC_WRONG_REPOSITORY", 401, `OIDC token refused: wrong repository: ${message}`);

/**
 * Deploy tokens for CI: `POST /api/v1/auth/oidc/exchange` (a verified OIDC token of a repository
 * linked to the project), `POST /api/v1/auth/deploy-tokens` (an environment API key, for its own or
 * a preview environment of its project), and `POST /api/v1/environments/current/archive` (the
 * caller's own preview environment, when its pull request closes).
 */
export async function oidcRoutes(root: FastifyInstance, engine: Engine, config: OidcConfig = oidcConfigFromEnv()): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const verify = createOidcVerifier(config);
  const ttlSeconds = config.deployTokenTtlSeconds;

  app.post("/api/v1/auth/oidc/exchange", { config: { auth: "none" }, schema: { body: OidcExchangeRequest, response: { 200: DeployTokenResponse, ...errors } } }, async (request) => {
    const claims = await verify(request.body.token);
    const project = await linkedProject(engine.db, claims.repository, request.body.project);
    const environment = request.body.environment;
    checkOidcDeploy(claims, environment, policyOf(project), project.slug);
    const target = await ensureTargetEnvironment(engine.db, project, environment);
    return mintDeployToken(engine.db, target, { ttlSeconds, via: "oidc", subject: typeof claims.sub === "string" ? claims.sub : undefined });
  });

  app.post("/api/v1/auth/deploy-tokens", { config: { auth: "env" }, schema: { body: DeployTokenRequest, response: { 200: DeployTokenResponse, ...errors } } }, async (request) => {
    const key = envOf(request);
    const environment = request.body.environment;
    // A preview's key acts on its own preview only (a pull request's code may hold it).
    if (isPreview(key.environment) && environment !== key.environment) {
      throw new StasisError("PREVIEW_KEY_SCOPE", 403, `this API key belongs to the preview environment ${key.project}/${key.environment}: it can get deploy tokens for ${key.environment} only, not ${environment}`);
    }
    if (environment !== key.environment && !isPreview(environment)) {
      throw forbidden(`this API key belongs to ${key.project}/${key.environment}: it can get deploy tokens for ${key.environment} or a preview/… environment, not ${environment}`);
    }
    const target = await ensureTargetEnvironment(engine.db, { id: key.projectId, slug: key.project }, environment);
    return mintDeployToken(engine.db, target, { ttlSeconds, via: "api-key", subject: key.environment });
  });

  const ProjectParams = z.object({ project: z.string().min(1) });
  const policyView = (project: ProjectRow) => ({ project: project.slug, ...policyOf(project) });
  app.get("/api/v1/admin/projects/:project/deploy-policy", { config: { auth: "admin" }, schema: { params: ProjectParams, response: { 200: DeployPolicyView, ...errors } } }, async (request) =>
    policyView(await projectRow(engine.db, request.params.project)),
  );
  app.put("/api/v1/admin/projects/:project/deploy-policy", { config: { auth: "admin" }, schema: { params: ProjectParams, body: DeployPolicyRequest, response: { 200: DeployPolicyView, ...errors } } }, async (request) => {
    const project = await projectRow(engine.db, request.params.project);
    const changes: Record<string, unknown> = {};
    if (request.body.defaultBranch !== undefined) changes.default_branch = request.body.defaultBranch;
    if (request.body.refs !== undefined) changes.deploy_refs = JSON.stringify(request.body.refs);
    if (Object.keys(changes).length > 0) await engine.db("projects").where({ id: project.id }).update(changes);
    return policyView(await projectRow(engine.db, project.slug));
  });

  app.post("/api/v1/environments/current/archive", { config: { auth: "env" }, schema: { response: { 200: EnvironmentView, ...errors } } }, async (request) => {
    const env = envOf(request);
    if (!isPreview(env.environment)) throw forbidden(`only preview environments can be archived with an environment credential; ${env.environment} needs the admin API`);
    await engine.db("environments").where({ id: env.environmentId }).whereNull("archived_at").update({ archived_at: engine.db.fn.now() });
    const promoted = await engine.db("environments as e").leftJoin("deployments as d", "d.id", "e.promoted_deployment_id").where("e.id", env.environmentId).first("d.version");
    return { slug: env.environment, project: env.project, archived: true, promotedVersion: promoted?.version ?? null };
  });
}

interface ProjectRow {
  id: string;
  slug: string;
  repository: string | null;
  default_branch: string | null;
  deploy_refs: Record<string, string[]> | null;
}
const PROJECT_COLUMNS = ["id", "slug", "repository", "default_branch", "deploy_refs"];

const policyOf = (project: ProjectRow): DeployPolicy => ({ defaultBranch: project.default_branch ?? DEFAULT_BRANCH, refs: project.deploy_refs ?? {} });

async function projectRow(db: Knex, slug: string): Promise<ProjectRow> {
  const project = await db("projects").where({ slug }).first(PROJECT_COLUMNS);
  if (!project) throw notFound(`project ${slug} does not exist`, "project");
  return project;
}

async function linkedProject(db: Knex, repository: CiClaims["repository"], slug: string | undefined): Promise<ProjectRow> {
  const wanted = normalizeRepository(repository);
  if (slug) {
    const project = await db("projects").where({ slug }).first(PROJECT_COLUMNS);
    if (!project) throw wrongRepository(`project ${slug} does not exist`);
    if (!project.repository || normalizeRepository(project.repository) !== wanted) {
      throw wrongRepository(`the token is for ${repository}, but project ${slug} is linked to ${project.repository ?? "no repository"} (link it: stasis projects link-repo ${slug} ${repository})`);
    }
    return project;
  }
  const linked = (await db("projects").whereNotNull("repository").select(PROJECT_COLUMNS)).filter((p) => normalizeRepository(p.repository) === wanted);
  if (linked.length === 0) throw wrongRepository(`${repository} is not linked to any Stasis project (link it: stasis projects link-repo <project> ${repository})`);
  if (linked.length > 1) throw badRequest(`${repository} is linked to several projects (${linked.map((p) => p.slug).join(", ")}): name one with the project input`, "project");
  return linked[0]!;
}
