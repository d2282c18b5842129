import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import {
  ApiErrorBody,
  CreateScheduleRequest,
  DeleteScheduleResponse,
  ListSchedulesQuery,
  ListSchedulesResponse,
  ScheduleIdParams,
  ScheduleView,
  UpdateScheduleRequest,
} from "../../schemas/index.ts";
import { systemClock, type Engine } from "../engine/context.ts";
import { envOf } from "../http/auth-hook.ts";
import { createSchedule, deleteSchedule, listSchedules, retrieveSchedule, setScheduleActive, updateSchedule } from "../schedules/schedule-store.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody };
const env = { auth: "env" as const };

/** Cron schedules of the caller's environment: declarative ones (from the promoted version) and imperative ones made here. */
export async function scheduleRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const clock = engine.clock ?? systemClock;
  const scope = (request: Parameters<typeof envOf>[0]) => {
    const p = envOf(request);
    return { environmentId: p.environmentId, environment: p.environment };
  };

  app.post("/api/v1/schedules", { config: env, schema: { body: CreateScheduleRequest, response: { 200: ScheduleView, ...errors } } }, async (request) => {
    return (await createSchedule(engine.db, scope(request), request.body, clock)).view;
  });
  app.get("/api/v1/schedules", { config: env, schema: { querystring: ListSchedulesQuery, response: { 200: ListSchedulesResponse, ...errors } } }, async (request) => {
    return { data: await listSchedules(engine.db, scope(request), request.query, clock) };
  });
  app.get("/api/v1/schedules/:id", { config: env, schema: { params: ScheduleIdParams, response: { 200: ScheduleView, ...errors } } }, async (request) => {
    return await retrieveSchedule(engine.db, scope(request), request.params.id, clock);
  });
  app.put("/api/v1/schedules/:id", { config: env, schema: { params: ScheduleIdParams, body: UpdateScheduleRequest, response: { 200: ScheduleView, ...errors } } }, async (request) => {
    return await updateSchedule(engine.db, scope(request), request.params.id, request.body, clock);
  });
  app.post("/api/v1/schedules/:id/deactivate", { config: env, schema: { params: ScheduleIdParams, response: { 200: ScheduleView, ...errors } } }, async (request) => {
    return await setScheduleActive(engine.db, scope(request), request.params.id, false, clock);
  });
  app.post("/api/v1/schedules/:id/activate", { config: env, schema: { params: ScheduleIdParams, response: { 200: ScheduleView, ...errors } } }, async (request) => {
    return await setScheduleActive(engine.db, scope(request), request.params.id, true, clock);
  });
  app.delete("/api/v1/schedules/:id", { config: env, schema: { params: ScheduleIdParams, response: { 200: DeleteScheduleResponse, ...errors } } }, async (request) => {
    return await deleteSchedule(engine.db, scope(request), request.params.id);
  });
}
