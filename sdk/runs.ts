import type { ListRunsResponse, LogsResponse, RunView, TriggerResponse } from "../schemas/index.ts";
import type { z } from "zod";
import { apiRequest } from "./api-client.ts";
import { RunPollTimeoutError } from "./errors.ts";

export type Run = RunView;
type ListRunsResult = z.infer<typeof ListRunsResponse>;
type LogsResult = z.infer<typeof LogsResponse>;

const FINAL = new Set(["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT", "EXPIRED"]);

/** Read and manage runs from app code (outside a run). */
export const runs = {
  retrieve(id: string): Promise<Run> {
    return apiRequest<Run>("GET", `/api/v1/runs/${encodeURIComponent(id)}`);
  },
  list(query: { status?: string; task?: string; tag?: string; limit?: number; cursor?: string } = {}): Promise<ListRunsResult> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const qs = params.toString();
    return apiRequest<ListRunsResult>("GET", `/api/v1/runs${qs ? `?${qs}` : ""}`);
  },
  cancel(id: string): Promise<Run> {
    return apiRequest<Run>("POST", `/api/v1/runs/${encodeURIComponent(id)}/cancel`, {});
  },
  replay(id: string, options: { version?: string } = {}): Promise<TriggerResponse> {
    return apiRequest<TriggerResponse>("POST", `/api/v1/runs/${encodeURIComponent(id)}/replay`, options);
  },
  logs(id: string, query: { after?: number; waitMs?: number } = {}): Promise<LogsResult> {
    const params = new URLSearchParams({ after: String(query.after ?? 0), waitMs: String(query.waitMs ?? 0) });
    return apiRequest<LogsResult>("GET", `/api/v1/runs/${encodeURIComponent(id)}/logs?${params}`);
  },
  /** Polls until the run is final (COMPLETED, FAILED, CANCELED, TIMED_OUT, EXPIRED) or the timeout passes. */
  async poll(id: string, options: { intervalMs?: number; timeoutMs?: number } = {}): Promise<Run> {
    const timeoutMs = options.timeoutMs ?? 10 * 60_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await runs.retrieve(id);
      if (FINAL.has(run.status)) return run;
      if (Date.now() > deadline) throw new RunPollTimeoutError(id, run.status, timeoutMs);
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
    }
  },
};
