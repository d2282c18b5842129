import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { ApiErrorBody, CheckpointOwnersRequest, CheckpointOwnersResponse } from "../../schemas/index.ts";
import type { Engine } from "../engine/context.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody };

/**
 * `POST /api/v1/admin/checkpoints/owners {runIds}` with the admin token: the project, environment,
 * status and current checkpoint of each run named — what `stasis checkpoints list|gc` needs to
 * group a store's checkpoints per project and tell the ones in use from the orphans. Runs the
 * server does not know are left out.
 */
export async function adminCheckpointRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  app.post(
    "/api/v1/admin/checkpoints/owners",
    { config: { auth: "admin" as const }, schema: { body: CheckpointOwnersRequest, response: { 200: CheckpointOwnersResponse, ...errors } } },
    async (request) => {
      if (request.body.runIds.length === 0) return { data: [] };
      const rows = (await engine.db("runs")
        .join("environments", "environments.id", "runs.environment_id")
        .join("projects", "projects.id", "environments.project_id")
        .whereIn("runs.id", request.body.runIds)
        .select("runs.id as runId", "projects.slug as project", "environments.slug as environment", "runs.status as status", "runs.checkpoint_location as checkpointLocation")) as Array<{ runId: string; project: string; environment: string; status: string; checkpointLocation: string | null }>;
      return { data: rows as never };
    },
  );
}
