import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import {
  ApiErrorBody,
  CreateRequestTokenRequest,
  CreateRequestTokenResponse,
  CreateWaitRequest,
  CreateWaitResponse,
  RunnerSendEventRequest,
  RunnerTriggerRequest,
  RunnerTriggerResponse,
  SendEventRequest,
  SendEventResponse,
  SuspendRequest,
  SuspendResponse,
} from "../../schemas/index.ts";
import type { Engine } from "../engine/context.ts";
import { sendEvent } from "../engine/events.ts";
import { lockLeasedRun } from "../engine/lease.ts";
import { receiveRequest, toReceivedRequest } from "../engine/requests.ts";
import { triggerRuns } from "../engine/trigger-run.ts";
import { createRequestToken, createWait, suspendRun } from "../engine/waits.ts";
import { badRequest } from "../errors.ts";
import { envOf } from "../http/auth-hook.ts";
import { findUnstorableInput } from "../http/storable-input.ts";
import { RunParams, runnerAuth, runnerErrors } from "./runner.ts";

/** Waits, events, request tokens, child runs and suspend: the durable-wait half of the API. */
export async function waitRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const errors = runnerErrors;
  const config = runnerAuth;

  app.post("/api/v1/events", { config: { auth: "env" }, schema: { body: SendEventRequest, response: { 200: SendEventResponse, ...errors } } }, async (request) =>
    sendEvent(engine, envOf(request).environmentId, request.body),
  );

  app.post("/api/v1/runner/runs/:runId/waits", { config, schema: { params: RunParams, body: CreateWaitRequest, response: { 200: CreateWaitResponse, ...errors } } }, async (request) =>
    createWait(engine, request.params.runId, request.body),
  );

  app.post("/api/v1/runner/runs/:runId/request-tokens", { config, schema: { params: RunParams, body: CreateRequestTokenRequest, response: { 200: CreateRequestTokenResponse, ...errors } } }, async (request) =>
    createRequestToken(engine, request.params.runId, request.body),
  );

  app.post("/api/v1/runner/runs/:runId/suspend", { config, schema: { params: RunParams, body: SuspendRequest, response: { 200: SuspendResponse, ...errors } } }, async (request) =>
    suspendRun(engine, request.params.runId, request.body),
  );

  app.post("/api/v1/runner/runs/:runId/trigger", { config, schema: { params: RunParams, body: RunnerTriggerRequest, response: { 200: RunnerTriggerResponse, ...errors } } }, async (request) => {
    const parent = await engine.db.transaction((trx) => lockLeasedRun(trx, request.params.runId, request.body.leaseId));
    const env = await engine.db("environments").where({ id: parent.environment_id }).first("slug");
    // All or nothing, like the public batch: one bad item (an unknown task or version) leaves no child behind.
    // Children of a started run may start even in an archived environment: the run is finishing.
    const items = request.body.items.map((item) => ({
      taskId: item.task,
      payload: item.payload,
      options: item.options,
      parentRunId: parent.id,
      ...(request.body.wait && !item.options?.version && parent.deployment_id ? { deploymentId: parent.deployment_id } : {}),
    }));
    const results = await triggerRuns(engine.db, { environmentId: parent.environment_id, environment: env.slug, archived: false }, items, engine.config.pendingVersionTtlMs);
    return { runIds: results.map((r) => r.id) };
  });

  app.post("/api/v1/runner/runs/:runId/events", { config, schema: { params: RunParams, body: RunnerSendEventRequest, response: { 200: SendEventResponse, ...errors } } }, async (request) => {
    const run = await engine.db.transaction((trx) => lockLeasedRun(trx, request.params.runId, request.body.leaseId));
    const { leaseId: _lease, ...event } = request.body;
    return await sendEvent(engine, run.environment_id, event);
  });

  // The request-wait URL accepts any method and body type; its unguessable token is the auth.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "string" }, (request, body, done) => {
      const text = body as string;
      if (/json/i.test(request.headers["content-type"] ?? "")) {
        try {
          return done(null, text.length ? JSON.parse(text) : null);
        } catch {
          // Not JSON after all: the task gets the raw text.
        }
      }
      done(null, text);
    });
    scope.withTypeProvider<ZodTypeProvider>().route({
      method: ["GET", "POST", "PUT", "PATCH", "DELETE"],
      url: "/api/v1/waitpoints/requests/:token",
      config: { auth: "none" },
      schema: { params: z.object({ token: z.string().min(1) }), response: { 200: z.object({ ok: z.literal(true), waitpointId: z.string() }), 404: ApiErrorBody, 409: ApiErrorBody } },
      handler: async (request) => {
        // No body schema here (any method, any body): refuse what cannot be stored as the validator does elsewhere.
        for (const [where, value] of [["query", request.query], ["body", request.body]] as const) {
          const problem = findUnstorableInput(value);
          if (problem) throw badRequest(`invalid ${where}: ${[where, ...problem.path].join(".")}: ${problem.message}`, [where, ...problem.path].join("."));
        }
        const received = toReceivedRequest({ method: request.method, headers: request.headers, query: request.query as Record<string, unknown>, body: request.body });
        const { waitpointId } = await receiveRequest(engine, request.params.token, received);
        return { ok: true as const, waitpointId };
      },
    });
  });
}
