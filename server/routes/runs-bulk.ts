import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { ApiErrorBody, BulkRunsRequest, BulkRunsResponse, type RunView, type TriggerResponse } from "../../schemas/index.ts";
import type { EnvironmentPrincipal } from "../auth.ts";
import { cancelRun } from "../engine/cancel-run.ts";
import type { Engine } from "../engine/context.ts";
import { getRunView } from "../engine/run-view.ts";
import { triggerRun } from "../engine/trigger-run.ts";
import { StasisError, badRequest, forbidden, notFound, toError } from "../errors.ts";
import { envOf } from "../http/auth-hook.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody, 413: ApiErrorBody };
const env = { auth: "env" as const };

/** A new run of the original's task and payload: on the original's version unless another is named (a migration); unpinned → promoted. */
export async function replayRun(engine: Engine, principal: EnvironmentPrincipal, original: RunView, version?: string): Promise<TriggerResponse> {
  const row = await engine.db("runs").where({ id: original.id }).first("deployment_id");
  return await triggerRun(
    engine.db,
    { environmentId: principal.environmentId, environment: principal.environment, archived: principal.archived },
    {
      taskId: original.taskId,
      payload: original.payload,
      options: { tags: original.tags, ...(version ? { version } : {}) },
      replayOf: original.id,
      ...(version || !row?.deployment_id ? {} : { deploymentId: row.deployment_id }),
    },
    engine.config.pendingVersionTtlMs,
  );
}

/**
 * Every id must be a run of the caller's environment before anything happens: an unknown id (404)
 * or another environment's (403) refuses the whole request, naming the ids, and changes nothing.
 */
async function checkIds(engine: Engine, principal: EnvironmentPrincipal, ids: string[]): Promise<void> {
  const rows = await engine.db("runs").whereIn("id", ids).select<Array<{ id: string; environment_id: string }>>("id", "environment_id");
  const found = new Map(rows.map((r) => [r.id, r.environment_id]));
  const unknown = ids.filter((id) => !found.has(id));
  if (unknown.length) throw notFound(`no such run: ${unknown.join(", ")}`, "ids");
  const foreign = ids.filter((id) => found.get(id) !== principal.environmentId);
  if (foreign.length) throw forbidden(`runs of another environment than ${principal.project}/${principal.environment}: ${foreign.join(", ")}`);
}

function failure(id: string, error: unknown) {
  const e = toError(error);
  return { id, ok: false, error: { code: e instanceof StasisError ? e.code : "INTERNAL", message: e instanceof StasisError ? e.message : "internal error" } };
}

function summary(results: Array<{ ok: boolean }>) {
  const done = results.filter((r) => r.ok).length;
  return { done, failed: results.length - done };
}

/**
 * Bulk cancel and replay by run ids, in one request. Each run is its own transaction (a cancel
 * locks the run and its waitpoint, as the single-run route does), so one run that finished
 * meanwhile fails alone with its code; the answer lists every run's outcome in request order.
 */
export async function bulkRunRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();

  app.post("/api/v1/runs/bulk/cancel", { config: env, schema: { body: BulkRunsRequest, response: { 200: BulkRunsResponse, ...errors } } }, async (request) => {
    const principal = envOf(request);
    if (request.body.version) throw badRequest("version applies to a replay, not a cancel", "version");
    await checkIds(engine, principal, request.body.ids);
    const results = [];
    for (const id of request.body.ids) {
      try {
        await cancelRun(engine, id);
        results.push({ id, ok: true, status: (await getRunView(engine.db, id)).status });
      } catch (error) {
        results.push(failure(id, error));
      }
    }
    return { ...summary(results), results };
  });

  app.post("/api/v1/runs/bulk/replay", { config: env, schema: { body: BulkRunsRequest, response: { 200: BulkRunsResponse, ...errors } } }, async (request) => {
    const principal = envOf(request);
    await checkIds(engine, principal, request.body.ids);
    const results = [];
    for (const id of request.body.ids) {
      try {
        const created = await replayRun(engine, principal, await getRunView(engine.db, id), request.body.version);
        results.push({ id, ok: true, newRunId: created.id });
      } catch (error) {
        results.push(failure(id, error));
      }
    }
    return { ...summary(results), results };
  });
}
