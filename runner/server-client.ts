import type { z } from "zod";
import {
  ApiErrorBody,
  CompleteAttemptResponse,
  CreateRequestTokenResponse,
  CreateWaitResponse,
  HeartbeatResponse,
  PollResponse,
  RegisterRunnerResponse,
  RunnerTriggerResponse,
  SendEventResponse,
  SuspendResponse,
  type AppendLogsRequest,
  type CompleteAttemptRequest,
  type CreateRequestTokenRequest,
  type CreateWaitRequest,
  type HeartbeatRequest,
  type PollRequest,
  type RegisterRunnerRequest,
  type ReleaseRequest,
  type RunnerSendEventRequest,
  type RunnerTriggerRequest,
  type SuspendRequest,
} from "../schemas/index.ts";

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
    const response = await fetch(`${base}/api/v1/runner${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${options.runnerToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const text = await response.text();
    const json = parseJson(text);
    if (!response.ok) {
      const parsed = ApiErrorBody.safeParse(json);
      const code = parsed.success ? parsed.data.error.code : "HTTP_ERROR";
      const message = parsed.success ? parsed.data.error.message : `HTTP ${response.status}`;
      throw new ServerCallError(response.status, code, `POST /api/v1/runner${path}: ${message}`);
    }
    if (json === undefined) throw new Error(`POST /api/v1/runner${path}: the answer is not JSON`);
    return schema.parse(json);
  }

  const run = (runId: string) => `/runs/${encodeURIComponent(runId)}`;
  const anything = { parse: (v: unknown) => v } as unknown as z.ZodType<unknown>;

  return {
    register: (body: In<typeof RegisterRunnerRequest>) => post("/register", body, RegisterRunnerResponse),
    poll: (body: In<typeof PollRequest>, signal?: AbortSignal) => post("/poll", body, PollResponse, signal, body.waitMs ?? 0),
    heartbeat: (body: In<typeof HeartbeatRequest>) => post("/heartbeat", body, HeartbeatResponse),
    release: (body: In<typeof ReleaseRequest>) => post("/release", body, anything),
    complete: (runId: string, body: In<typeof CompleteAttemptRequest>) => post(`${run(runId)}/complete`, body, CompleteAttemptResponse),
    appendLogs: (runId: string, body: In<typeof AppendLogsRequest>) => post(`${run(runId)}/logs`, body, anything),
    createWait: (runId: string, body: In<typeof CreateWaitRequest>) => post(`${run(runId)}/waits`, body, CreateWaitResponse),
    createRequestToken: (runId: string, body: In<typeof CreateRequestTokenRequest>) => post(`${run(runId)}/request-tokens`, body, CreateRequestTokenResponse),
    suspend: (runId: string, body: In<typeof SuspendRequest>) => post(`${run(runId)}/suspend`, body, SuspendResponse),
    trigger: (runId: string, body: In<typeof RunnerTriggerRequest>) => post(`${run(runId)}/trigger`, body, RunnerTriggerResponse),
    sendEvent: (runId: string, body: In<typeof RunnerSendEventRequest>) => post(`${run(runId)}/events`, body, SendEventResponse),
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
