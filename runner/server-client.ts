import type { z } from "zod";
import {
  ApiErrorBody,
  CompleteAttemptResponse,
  CompleteAttemptsResponse,
  MAX_COMPLETIONS_PER_CALL,
  CreateRequestTokenResponse,
  CreateWaitResponse,
  HandOverResponse,
  HeartbeatResponse,
  PollResponse,
  RegisterRunnerResponse,
  RunnerTriggerResponse,
  SafetyCheckpointResponse,
  SendEventResponse,
  SuspendResponse,
  type AppendLogsRequest,
  type CompleteAttemptRequest,
  type CreateRequestTokenRequest,
  type CreateWaitRequest,
  type HandOverRequest,
  type SafetyCheckpointRequest,
  type HeartbeatRequest,
  type PollRequest,
  type RegisterRunnerRequest,
  type ReleaseRequest,
  type RunnerSendEventRequest,
  type RunnerConnectionTokenRequest,
  TokenResponse,
  type RunnerTriggerRequest,
  type SuspendRequest,
} from "../schemas/index.ts";
import { postJson } from "./http-post.ts";

export class ServerCallError extends Error {
  override name = "ServerCallError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type In<T extends z.ZodType> = z.input<T>;

/** The runner's only way to the control plane: the runner API over HTTP, bodies checked with the shared schemas. */
export function createServerClient(options: { serverUrl: string; runnerToken: string; callTimeoutMs?: number }) {
  const base = options.serverUrl.replace(/\/+$/, "");
  const callTimeoutMs = options.callTimeoutMs ?? 10_000;

  /**
   * One try. It gives up after `timeoutMs` beyond what the call may wait on purpose (a long poll's
   * `waitMs`): a server whose database is unreachable can hold a request until its pool times out,
   * longer than a lease lasts. Reports are retried (retry-call.ts), so a try cut short costs nothing.
   */
  async function post<T extends z.ZodType>(path: string, body: unknown, schema: T, signal?: AbortSignal, waitsMs = 0): Promise<z.infer<T>> {
    const timeout = AbortSignal.timeout(callTimeoutMs + waitsMs);
    const response = await postJson(new URL(`${base}/api/v1/runner${path}`), { authorization: `Bearer ${options.runnerToken}` }, JSON.stringify(body), signal ? AbortSignal.any([signal, timeout]) : timeout);
    const json = parseJson(response.text);
    if (response.status < 200 || response.status > 299) {
      const parsed = ApiErrorBody.safeParse(json);
      const code = parsed.success ? parsed.data.error.code : "HTTP_ERROR";
      const message = parsed.success ? parsed.data.error.message : `HTTP ${response.status}`;
      throw new ServerCallError(response.status, code, `POST /api/v1/runner${path}: ${message}`);
    }
    if (json === undefined) throw new Error(`POST /api/v1/runner${path}: the answer is not JSON`);
    return schema.parse(json);
  }

  const run = (runId: string) => `/runs/${encodeURIComponent(runId)}`;

  /**
   * Ends reported in the same turn of the event loop go out as one call (`POST /complete`, one
   * transaction and one commit on the server) — a burst of runs ending together no longer costs a
   * request and a commit each. Each caller still gets its own answer or its own error, so retries
   * (retry-call.ts) work per run as before. A server without the batch route gets single calls.
   */
  type Pending = { runId: string; body: In<typeof CompleteAttemptRequest>; resolve: (v: z.infer<typeof CompleteAttemptResponse>) => void; reject: (e: unknown) => void };
  let queued: Pending[] = [];
  let batchRoute = true;
  const sendQueued = () => {
    const batch = queued.splice(0, MAX_COMPLETIONS_PER_CALL);
    if (queued.length > 0) setImmediate(sendQueued);
    if (batch.length === 1 || !batchRoute) {
      for (const p of batch) post(`${run(p.runId)}/complete`, p.body, CompleteAttemptResponse).then(p.resolve, p.reject);
      return;
    }
    post("/complete", { items: batch.map((p) => ({ runId: p.runId, ...p.body })) }, CompleteAttemptsResponse).then(
      ({ results }) =>
        batch.forEach((p, i) => {
          const r = results[i];
          if (!r || r.runId !== p.runId) p.reject(new Error("POST /api/v1/runner/complete: the answer does not match the items"));
          else if (r.ok) p.resolve({ status: r.status, retryAt: r.retryAt });
          else p.reject(new ServerCallError(r.error.status, r.error.code, `POST /api/v1/runner${run(p.runId)}/complete: ${r.error.message}`));
        }),
      (error: unknown) => {
        if (error instanceof ServerCallError && error.status === 404 && error.code === "NOT_FOUND" && /route/i.test(error.message)) {
          batchRoute = false;
          queued.unshift(...batch);
          return sendQueued();
        }
        for (const p of batch) p.reject(error);
      },
    );
  };
  const complete = (runId: string, body: In<typeof CompleteAttemptRequest>) =>
    new Promise<z.infer<typeof CompleteAttemptResponse>>((resolve, reject) => {
      queued.push({ runId, body, resolve, reject });
      if (queued.length === 1) setImmediate(sendQueued);
    });
  const anything = { parse: (v: unknown) => v } as unknown as z.ZodType<unknown>;

  return {
    register: (body: In<typeof RegisterRunnerRequest>) => post("/register", body, RegisterRunnerResponse),
    poll: (body: In<typeof PollRequest>, signal?: AbortSignal) => post("/poll", body, PollResponse, signal, body.waitMs ?? 0),
    heartbeat: (body: In<typeof HeartbeatRequest>) => post("/heartbeat", body, HeartbeatResponse),
    release: (body: In<typeof ReleaseRequest>) => post("/release", body, anything),
    complete,
    appendLogs: (runId: string, body: In<typeof AppendLogsRequest>) => post(`${run(runId)}/logs`, body, anything),
    createWait: (runId: string, body: In<typeof CreateWaitRequest>) => post(`${run(runId)}/waits`, body, CreateWaitResponse),
    createRequestToken: (runId: string, body: In<typeof CreateRequestTokenRequest>) => post(`${run(runId)}/request-tokens`, body, CreateRequestTokenResponse),
    suspend: (runId: string, body: In<typeof SuspendRequest>) => post(`${run(runId)}/suspend`, body, SuspendResponse),
    handOver: (runId: string, body: In<typeof HandOverRequest>) => post(`${run(runId)}/hand-over`, body, HandOverResponse),
    safetyCheckpoint: (runId: string, body: In<typeof SafetyCheckpointRequest>) => post(`${run(runId)}/checkpoints`, body, SafetyCheckpointResponse),
    trigger: (runId: string, body: In<typeof RunnerTriggerRequest>) => post(`${run(runId)}/trigger`, body, RunnerTriggerResponse),
    sendEvent: (runId: string, body: In<typeof RunnerSendEventRequest>) => post(`${run(runId)}/events`, body, SendEventResponse),
    connectionToken: (runId: string, body: In<typeof RunnerConnectionTokenRequest>) => post(`${run(runId)}/connections/token`, body, TokenResponse),
  };
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return undefined;
  }
}

export type ServerClient = ReturnType<typeof createServerClient>;
