import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiErrorBody, CreateDeploymentRequest, DeploymentView, FailDeploymentRequest, FinishDeploymentRequest, StartDeploymentRequest, Version } from "../../schemas/index.ts";
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
import { envOf } from "../http/auth-hook.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody };
const env = { auth: "env" as const };
const IdParams = z.object({ id: z.string().uuid("deployment id is a uuid") });
const VersionParams = z.object({ version: Version });

export async function deploymentRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const target = (request: { principal: unknown }) => {
    const p = envOf(request as never);
    return { environmentId: p.environmentId, environment: p.environment, project: p.project };
  };

  app.post("/api/v1/deployments", { config: env, schema: { body: CreateDeploymentRequest, response: { 200: DeploymentView, ...errors } } }, async (request) => createDeployment(engine.db, target(request), request.body));
  app.post("/api/v1/deployments/start", { config: env, schema: { body: StartDeploymentRequest.optional(), response: { 200: DeploymentView, ...errors } } }, async (request) =>
    startDeployment(engine.db, target(request), request.body ?? {}),
  );
  app.post("/api/v1/deployments/:id/heartbeat", { config: env, schema: { params: IdParams, response: { 200: DeploymentView, ...errors } } }, async (request) =>
    heartbeatDeployment(engine.db, target(request), request.params.id),
  );
  app.post("/api/v1/deployments/:id/finish", { config: env, schema: { params: IdParams, body: FinishDeploymentRequest, response: { 200: DeploymentView, ...errors } } }, async (request) =>
    finishDeployment(engine.db, target(request), request.params.id, request.body),
  );
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
