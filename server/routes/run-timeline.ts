import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiErrorBody, RunTimeline, StreamRunsQuery } from "../../schemas/index.ts";
import { assertSameEnvironment } from "../auth.ts";
import type { Engine } from "../engine/context.ts";
import { RUN_CHANGE_EVENT, type RunChange } from "../engine/run-changes.ts";
import { runTimeline } from "../engine/run-timeline.ts";
import { getRunView } from "../engine/run-view.ts";
import { envOf } from "../http/auth-hook.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody };
const env = { auth: "env" as const };
const KEEPALIVE_MS = 15_000;

/**
 * What the dashboard reads beyond the CLI's routes, with the same rule: an environment's own runs
 * only. `GET /api/v1/runs/:id/timeline` (waits, frozen or not, and child runs) and
 * `GET /api/v1/stream/runs` — Server-Sent Events, one `run` event per state change or batch of
 * log lines of this environment's runs, fed by the LISTEN connection (no polling); the admin's
 * `GET /api/v1/admin/stream/runs` is the same for every environment.
 */
export async function runTimelineRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();

  app.get("/api/v1/runs/:id/timeline", { config: env, schema: { params: z.object({ id: z.string().min(1) }), response: { 200: RunTimeline, ...errors } } }, async (request) => {
    const view = await getRunView(engine.db, request.params.id);
    assertSameEnvironment(envOf(request), view.environmentId, `run ${request.params.id}`);
    return await runTimeline(engine.db, view.id, view.attemptDetails ?? []);
  });

  app.get("/api/v1/stream/runs", { config: { ...env, unlisted: true }, schema: { querystring: StreamRunsQuery, response: errors } }, async (request, reply) => {
    const principal = envOf(request);
    const only = request.query.run;
    streamRunChanges(engine, request, reply, (change) => change.env === principal.environmentId && (!only || change.run === only));
  });

  // The admin's run list across every environment: the same stream, unfiltered.
  app.get("/api/v1/admin/stream/runs", { config: { auth: "admin" as const, unlisted: true }, schema: { response: errors } }, async (request, reply) => {
    streamRunChanges(engine, request, reply, () => true);
  });
}

/** Server-Sent Events: one `run` event per change `wanted` lets through, `resync` after the LISTEN connection came back. */
function streamRunChanges(engine: Engine, request: FastifyRequest, reply: FastifyReply, wanted: (change: RunChange) => boolean): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" });
  res.write("retry: 2000\n: connected\n\n");
  const onChange = (change: RunChange | null) => {
    // null: the LISTEN connection came back after a loss; whatever changed meanwhile, re-read.
    if (change === null) return void res.write("event: resync\ndata: {}\n\n");
    if (!wanted(change)) return;
    res.write(`event: run\ndata: ${JSON.stringify({ id: change.run, what: change.what })}\n\n`);
  };
  engine.listener.events.on(RUN_CHANGE_EVENT, onChange);
  const ping = setInterval(() => res.write(": ping\n\n"), KEEPALIVE_MS);
  const end = () => {
    clearInterval(ping);
    engine.listener.events.off(RUN_CHANGE_EVENT, onChange);
  };
  res.once("close", end);
  request.raw.once("close", end);
}
