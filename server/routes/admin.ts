import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import {
  ApiErrorBody,
  ApiKeyView,
  CreateEnvironmentRequest,
  CreateKeyRequest,
  CreateKeyResponse,
  CreateProjectRequest,
  CreateProjectResponse,
  EnvironmentSlug,
  EnvironmentView,
  LinkRepositoryRequest,
  ListEnvironmentsResponse,
  ListKeysResponse,
  ListAllRunsQuery,
  ListAllRunsResponse,
  ListProjectsResponse,
  ProjectView,
} from "../../schemas/index.ts";
import type { Engine } from "../engine/context.ts";
import { normalizeRepository } from "../oidc/index.ts";
import { listAllRuns } from "../engine/list-runs.ts";
import { archiveEnvironment, createEnvironment, createEnvironmentKey, ensureProject, findEnvironment, linkRepository, listEnvironments, listKeys, listProjects, requireProject, revokeKey } from "../projects.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody };
const admin = { auth: "admin" as const };
const ProjectParams = z.object({ project: z.string().min(1) });
// The slug arrives URL-encoded (`preview%2Fpr-3`); fastify decodes params.
const EnvParams = z.object({ project: z.string().min(1), env: EnvironmentSlug });
const KeyParams = EnvParams.extend({ keyId: z.string().min(1).max(64) });

export async function adminRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();

  app.post("/api/v1/admin/projects", { config: admin, schema: { body: CreateProjectRequest, response: { 200: CreateProjectResponse, ...errors } } }, async (request) => {
    const result = await ensureProject(engine.db, request.body);
    return { project: request.body.slug, created: result.created, environments: result.keys as z.infer<typeof CreateProjectResponse>["environments"] };
  });

  app.post("/api/v1/admin/projects/:project/environments", { config: admin, schema: { params: ProjectParams, body: CreateEnvironmentRequest, response: { 200: ApiKeyView, ...errors } } }, async (request) => {
    const key = await createEnvironment(engine.db, { project: request.params.project, environment: request.body.slug });
    return { environment: request.body.slug, apiKey: key.apiKey };
  });

  app.post("/api/v1/admin/projects/:project/environments/:env/archive", { config: admin, schema: { params: EnvParams, response: { 200: EnvironmentView, ...errors } } }, async (request) => {
    await archiveEnvironment(engine.db, { project: request.params.project, environment: request.params.env });
    const env = await findEnvironment(engine.db, request.params.project, request.params.env);
    const promoted = await engine.db("deployments").where({ id: (env as { promoted_deployment_id?: string }).promoted_deployment_id ?? null }).first("version");
    return { slug: request.params.env, project: request.params.project, archived: true, promotedVersion: promoted?.version ?? null };
  });

  app.get("/api/v1/admin/runs", { config: admin, schema: { querystring: ListAllRunsQuery, response: { 200: ListAllRunsResponse, ...errors } } }, async (request) => {
    return await listAllRuns(engine.db, request.query);
  });

  app.get("/api/v1/admin/projects", { config: admin, schema: { response: { 200: ListProjectsResponse, ...errors } } }, async () => ({ data: await listProjects(engine.db) }));

  app.get("/api/v1/admin/projects/:project", { config: admin, schema: { params: ProjectParams, response: { 200: ProjectView, ...errors } } }, async (request) => {
    await requireProject(engine.db, request.params.project);
    return (await listProjects(engine.db)).find((p) => p.slug === request.params.project)!;
  });

  app.put("/api/v1/admin/projects/:project/repository", { config: admin, schema: { params: ProjectParams, body: LinkRepositoryRequest, response: { 200: ProjectView, ...errors } } }, async (request) => {
    await linkRepository(engine.db, request.params.project, request.body.repository, normalizeRepository);
    return (await listProjects(engine.db)).find((p) => p.slug === request.params.project)!;
  });

  app.get("/api/v1/admin/projects/:project/environments", { config: admin, schema: { params: ProjectParams, response: { 200: ListEnvironmentsResponse, ...errors } } }, async (request) => {
    await requireProject(engine.db, request.params.project);
    return { data: await listEnvironments(engine.db, [request.params.project]) };
  });

  app.get("/api/v1/admin/projects/:project/environments/:env/keys", { config: admin, schema: { params: EnvParams, response: { 200: ListKeysResponse, ...errors } } }, async (request) => ({
    data: await listKeys(engine.db, request.params.project, request.params.env),
  }));

  // A new key leaves the others working unless the body asks to rotate (`revokeOthers`).
  app.post("/api/v1/admin/projects/:project/environments/:env/keys", { config: admin, schema: { params: EnvParams, body: CreateKeyRequest.nullish(), response: { 200: CreateKeyResponse, ...errors } } }, async (request) => {
    const key = await createEnvironmentKey(engine.db, { project: request.params.project, environment: request.params.env, revokeOthers: request.body?.revokeOthers ?? false });
    return { environment: request.params.env, apiKey: key.apiKey, id: key.id, revoked: key.revoked };
  });

  app.delete("/api/v1/admin/projects/:project/environments/:env/keys/:keyId", { config: admin, schema: { params: KeyParams, response: { 204: z.null(), ...errors } } }, async (request, reply) => {
    await revokeKey(engine.db, request.params.project, request.params.env, request.params.keyId);
    return reply.code(204).send(null);
  });
}
