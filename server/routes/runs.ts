import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import {
  ApiErrorBody,
  BatchTriggerRequest,
  BatchTriggerResponse,
  ListRunsQuery,
  ListRunsResponse,
  LogsQuery,
  LogsResponse,
  ReplayRequest,
  RunView,
  TaskId,
  TriggerRequest,
  TriggerResponse,
  WhoAmIResponse,
} from "../../schemas/index.ts";
import { assertSameEnvironment, type EnvironmentPrincipal } from "../auth.ts";
import { cancelRun } from "../engine/cancel-run.ts";
import type { Engine } from "../engine/context.ts";
import { listRuns } from "../engine/list-runs.ts";
import { readLogs } from "../engine/logs.ts";
import { getRunView, publicRunView } from "../engine/run-view.ts";
import { triggerRun, triggerRuns } from "../engine/trigger-run.ts";
import { envOf } from "../http/auth-hook.ts";
import { replayRun } from "./runs-bulk.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody, 413: ApiErrorBody };
const env = { auth: "env" as const };
const RunIdParams = z.object({ id: z.string().min(1) });

function triggerEnv(p: EnvironmentPrincipal) {
  return { environmentId: p.environmentId, environment: p.environment, archived: p.archived };
}

async function ownRun(engine: Engine, principal: EnvironmentPrincipal, runId: string) {
  const view = await getRunView(engine.db, runId);
  assertSameEnvironment(principal, view.environmentId, `run ${runId}`);
  return view;
}

export async function runRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const ttl = engine.config.pendingVersionTtlMs;

  app.post("/api/v1/tasks/:taskId/trigger", { config: env, schema: { params: z.object({ taskId: TaskId }), body: TriggerRequest, response: { 200: TriggerResponse, ...errors } } }, async (request) => {
    return await triggerRun(engine.db, triggerEnv(envOf(request)), { taskId: request.params.taskId, payload: request.body.payload, options: request.body.options }, ttl);
  });

  app.post("/api/v1/tasks/batch", { config: env, schema: { body: BatchTriggerRequest, response: { 200: BatchTriggerResponse, ...errors } } }, async (request) => {
    const principal = envOf(request);
    // All or nothing: one bad item leaves no run of the batch behind. One INSERT for every item.
    const items = request.body.items.map((item) => ({ taskId: item.task, payload: item.payload, options: item.options }));
    return { runs: await triggerRuns(engine.db, triggerEnv(principal), items, ttl) };
  });

  app.get("/api/v1/runs", { config: env, schema: { querystring: ListRunsQuery, response: { 200: ListRunsResponse, ...errors } } }, async (request) => {
    return await listRuns(engine.db, { environmentId: envOf(request).environmentId, ...request.query });
  });

  app.get("/api/v1/runs/:id", { config: env, schema: { params: RunIdParams, response: { 200: RunView, ...errors } } }, async (request) => {
    return publicRunView(await ownRun(engine, envOf(request), request.params.id));
  });

  app.post("/api/v1/runs/:id/cancel", { config: env, schema: { params: RunIdParams, response: { 200: RunView, ...errors } } }, async (request) => {
    await ownRun(engine, envOf(request), request.params.id);
    await cancelRun(engine, request.params.id);
    return publicRunView(await getRunView(engine.db, request.params.id));
  });

  app.post("/api/v1/runs/:id/replay", { config: env, schema: { params: RunIdParams, body: ReplayRequest.optional(), response: { 200: TriggerResponse, ...errors } } }, async (request) => {
    const principal = envOf(request);
    const original = await ownRun(engine, principal, request.params.id);
    return await replayRun(engine, principal, original, request.body?.version);
  });

  app.get("/api/v1/runs/:id/logs", { config: env, schema: { params: RunIdParams, querystring: LogsQuery, response: { 200: LogsResponse, ...errors } } }, async (request) => {
    await ownRun(engine, envOf(request), request.params.id);
    return await readLogs(engine, request.params.id, request.query);
  });

  app.get("/api/v1/whoami", { config: env, schema: { response: { 200: WhoAmIResponse, ...errors } } }, async (request) => {
    const p = envOf(request);
    return { project: p.project, environment: p.environment as z.infer<typeof WhoAmIResponse>["environment"] };
  });
}
