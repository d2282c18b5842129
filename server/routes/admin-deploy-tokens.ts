import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiErrorBody } from "../../schemas/index.ts";
import { AdminDeployTokenRequest, DeployTokenResponse } from "../../schemas/deploy-token.ts";
import type { Engine } from "../engine/context.ts";
import { notFound, StasisError } from "../errors.ts";
import { oidcConfigFromEnv } from "../oidc/config.ts";
import { ensureTargetEnvironment, mintDeployToken, normalizeRepository } from "../oidc/deploy-tokens.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody };

/**
 * `POST /api/v1/admin/projects/:project/deploy-tokens {environment}` with the admin token: a
 * short-lived deploy token for one environment (a missing `preview/…` one is created). The GitHub
 * App deploys with these instead of holding long-lived environment API keys, and names the
 * repository it builds: a project linked to another repository refuses it.
 */
export async function adminDeployTokenRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const ttlSeconds = oidcConfigFromEnv().deployTokenTtlSeconds;
  app.post(
    "/api/v1/admin/projects/:project/deploy-tokens",
    { config: { auth: "admin" as const }, schema: { params: z.object({ project: z.string().min(1) }), body: AdminDeployTokenRequest, response: { 200: DeployTokenResponse, ...errors } } },
    async (request) => {
      const project = await engine.db("projects").where({ slug: request.params.project }).first("id", "slug", "repository");
      if (!project) throw notFound(`project ${request.params.project} does not exist (create it with POST /api/v1/admin/projects)`, "project");
      const { repository } = request.body;
      // Two repositories can map to one slug (acme/foo.bar and other/foo-bar): never deploy one into the other's project.
      if (repository && project.repository && normalizeRepository(project.repository) !== normalizeRepository(repository)) {
        throw new StasisError("PROJECT_LINKED_ELSEWHERE", 409, `project ${project.slug} is linked to the repository ${project.repository}, not ${repository}: refusing to deploy ${repository} into it`);
      }
      const target = await ensureTargetEnvironment(engine.db, project, request.body.environment);
      // issued_via is constrained to oidc|api-key: the admin token is the key here; subject says who.
      return mintDeployToken(engine.db, target, { ttlSeconds, via: "api-key", subject: "admin" });
    },
  );
}
