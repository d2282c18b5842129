import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiErrorBody, CopyDeploymentRequest, DeploymentView } from "../../schemas/index.ts";
import { copyDeployment } from "../engine/copy-deployment.ts";
import type { Engine } from "../engine/context.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody };

/** Admin: a preview's version promoted to production or staging as is (`stasis deployments copy`). It spans two environments, so it is the admin's. */
export async function deploymentCopyRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  app.post(
    "/api/v1/admin/projects/:project/deployments/copy",
    { config: { auth: "admin" as const }, schema: { params: z.object({ project: z.string().min(1) }), body: CopyDeploymentRequest, response: { 200: DeploymentView, ...errors } } },
    async (request) => await copyDeployment(engine.db, { project: request.params.project, ...request.body }),
  );
}
