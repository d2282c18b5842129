import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import {
  ApiErrorBody,
  AppendLogsRequest,
  CompleteAttemptRequest,
  CompleteAttemptResponse,
  CompleteAttemptsRequest,
  CompleteAttemptsResponse,
  HandOverRequest,
  HandOverResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  PollRequest,
  PollResponse,
  RegisterRunnerRequest,
  RegisterRunnerResponse,
  ReleaseRequest,
  ReleaseResponse,
  SafetyCheckpointRequest,
  SafetyCheckpointResponse,
} from "../../schemas/index.ts";
import { completeAttempt, completeAttempts } from "../engine/complete-attempt.ts";
import type { Engine } from "../engine/context.ts";
import { appendLogs } from "../engine/logs.ts";
import { handOverRun, recordSafetyCheckpoint } from "../engine/running-checkpoints.ts";
import { heartbeatRunner, pollRunner, registerRunner, releaseRuns } from "../engine/runners.ts";

export const runnerErrors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody, 413: ApiErrorBody };
export const runnerAuth = { auth: "runner" as const };
export const RunParams = z.object({ runId: z.string().min(1) });

export async function runnerRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const errors = runnerErrors;
  const config = runnerAuth;

  app.post("/api/v1/runner/register", { config, schema: { body: RegisterRunnerRequest, response: { 200: RegisterRunnerResponse, ...errors } } }, async (request) => registerRunner(engine, request.body));

  app.post("/api/v1/runner/poll", { config, schema: { body: PollRequest, response: { 200: PollResponse, ...errors } } }, async (request, reply) => {
    // Stop waiting when the client goes away.
    const abort = new AbortController();
    reply.raw.once("close", () => abort.abort());
    return await pollRunner(engine, request.body, abort.signal);
  });

  app.post("/api/v1/runner/heartbeat", { config, schema: { body: HeartbeatRequest, response: { 200: HeartbeatResponse, ...errors } } }, async (request) => heartbeatRunner(engine, request.body));

  app.post("/api/v1/runner/release", { config, schema: { body: ReleaseRequest, response: { 200: ReleaseResponse, ...errors } } }, async (request) => releaseRuns(engine, request.body));

  // A draining runner's checkpoint of a running run: EXECUTING → QUEUED, resumed elsewhere in the same attempt.
  app.post("/api/v1/runner/runs/:runId/hand-over", { config, schema: { params: RunParams, body: HandOverRequest, response: { 200: HandOverResponse, ...errors, 422: ApiErrorBody } } }, async (request) =>
    handOverRun(engine, request.params.runId, request.body),
  );

  // A safety checkpoint of a running run: the one it resumes from if its runner dies.
  app.post("/api/v1/runner/runs/:runId/checkpoints", { config, schema: { params: RunParams, body: SafetyCheckpointRequest, response: { 200: SafetyCheckpointResponse, ...errors, 422: ApiErrorBody } } }, async (request) =>
    recordSafetyCheckpoint(engine, request.params.runId, request.body),
  );

  app.post("/api/v1/runner/runs/:runId/complete", { config, schema: { params: RunParams, body: CompleteAttemptRequest, response: { 200: CompleteAttemptResponse, ...errors } } }, async (request) =>
    completeAttempt(engine, request.params.runId, request.body),
  );

  // Several ends at once (one transaction): the runner's client sends the ends that happen together this way.
  app.post("/api/v1/runner/complete", { config, schema: { body: CompleteAttemptsRequest, response: { 200: CompleteAttemptsResponse, ...errors } } }, async (request) => ({
    results: await completeAttempts(engine, request.body.items),
  }));

  app.post("/api/v1/runner/runs/:runId/logs", { config, schema: { params: RunParams, body: AppendLogsRequest, response: { 200: z.object({ lastSeq: z.number().int() }), ...errors } } }, async (request) => ({
    lastSeq: await appendLogs(engine, request.params.runId, request.body.leaseId, request.body.lines),
  }));
}
