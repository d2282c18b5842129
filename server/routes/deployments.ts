import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { allowedImageSources, ApiErrorBody, CreateDeploymentRequest, DeploymentView, FailDeploymentRequest, FinishDeploymentRequest, imageRefRefusal, StartDeploymentRequest, Version } from "../../schemas/index.ts";
import type { Engine } from "../engine/context.ts";
import {
  createDeployment,
  failDeployment,
  finishDeployment,
  getDeployment,
  heartbeatDeployment,
  listDeployments,
  promoteVersion,
  rollback,
  startDeployment,
  toDeploymentView,
} from "../engine/deployments.ts";
import { badRequest, StasisError } from "../errors.ts";
import { envOf } from "../http/auth-hook.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody };
const env = { auth: "env" as const };
const IdParams = z.object({ id: z.string().uuid("deployment id is a uuid") });
const VersionParams = z.object({ version: Version });

/**
 * Where deployments' images may come from: STASIS_ALLOWED_REGISTRIES, default the registry in
 * STASIS_REGISTRY and local OCI layout dirs (read once, when the routes are registered). Runners
 * apply the same rule to every image they pull.
 */
function imageRefCheck(env: NodeJS.ProcessEnv = process.env) {
  const sources = allowedImageSources(env.STASIS_ALLOWED_REGISTRIES, env.STASIS_REGISTRY);
  return (body: { imageRef: string; imageDigest: string }) => {
    if (!body.imageRef.endsWith(`@${body.imageDigest}`)) throw badRequest(`imageRef ${body.imageRef} does not name imageDigest ${body.imageDigest}`, "imageRef");
    const refusal = imageRefRefusal(body.imageRef, sources);
    if (refusal) throw new StasisError("IMAGE_NOT_ALLOWED", 400, `imageRef: ${refusal}`, { field: "imageRef" });
  };
}

export async function deploymentRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const checkImageRef = imageRefCheck();
  const target = (request: { principal: unknown }) => {
    const p = envOf(request as never);
    return { environmentId: p.environmentId, environment: p.environment, project: p.project };
  };

  app.post("/api/v1/deployments", { config: env, schema: { body: CreateDeploymentRequest, response: { 200: DeploymentView, ...errors } } }, async (request) => {
    checkImageRef(request.body);
    return createDeployment(engine.db, target(request), request.body);
  });
  app.post("/api/v1/deployments/start", { config: env, schema: { body: StartDeploymentRequest.optional(), response: { 200: DeploymentView, ...errors } } }, async (request) =>
    startDeployment(engine.db, target(request), request.body ?? {}),
  );
  app.post("/api/v1/deployments/:id/heartbeat", { config: env, schema: { params: IdParams, response: { 200: DeploymentView, ...errors } } }, async (request) =>
    heartbeatDeployment(engine.db, target(request), request.params.id),
  );
  app.post("/api/v1/deployments/:id/finish", { config: env, schema: { params: IdParams, body: FinishDeploymentRequest, response: { 200: DeploymentView, ...errors } } }, async (request) => {
    checkImageRef(request.body);
    return finishDeployment(engine.db, target(request), request.params.id, request.body);
  });
  app.post("/api/v1/deployments/:id/fail", { config: env, schema: { params: IdParams, body: FailDeploymentRequest, response: { 200: DeploymentView, ...errors } } }, async (request) =>
    failDeployment(engine.db, target(request), request.params.id, request.body),
  );
  app.get("/api/v1/deployments", { config: env, schema: { response: { 200: z.object({ data: z.array(DeploymentView) }), ...errors } } }, async (request) => ({
    data: await listDeployments(engine.db, target(request)),
  }));
  app.get("/api/v1/deployments/:version", { config: env, schema: { params: VersionParams, response: { 200: DeploymentView, ...errors } } }, async (request) => {
    const t = target(request);
    return await toDeploymentView(engine.db, await getDeployment(engine.db, t, request.params.version), t.environment);
  });
  app.post("/api/v1/deployments/:version/promote", { config: env, schema: { params: VersionParams, response: { 200: DeploymentView, ...errors } } }, async (request) =>
    promoteVersion(engine.db, target(request), request.params.version),
  );
  app.post("/api/v1/deployments/rollback", { config: env, schema: { response: { 200: DeploymentView, ...errors } } }, async (request) => rollback(engine.db, target(request)));
}
