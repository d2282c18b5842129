import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { ApiErrorBody, TasksQuery, TasksView } from "../../schemas/index.ts";
import type { Engine } from "../engine/context.ts";
import { taskOverview } from "../engine/task-overview.ts";
import { envOf } from "../http/auth-hook.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody };

/**
 * `GET /api/v1/tasks?hours=24`: the tasks of the caller's environment's promoted version with their
 * retry, machine and queue settings, and their recent runs (the dashboard's Tasks page). Same rule as
 * every environment route: an API key (or its dashboard session) sees its own environment; the admin
 * names one with `x-stasis-environment`.
 */
export async function taskRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  app.get("/api/v1/tasks", { config: { auth: "env" }, schema: { querystring: TasksQuery, response: { 200: TasksView, ...errors } } }, async (request) =>
    taskOverview(engine.db, { environmentId: envOf(request).environmentId, hours: request.query.hours }),
  );
}
