import type { EventFilter } from "../schemas/index.ts";
import { apiRequest } from "./api-client.ts";
import { durationToMs, type Duration } from "./duration.ts";
import { getRunRuntime, requireRunRuntime } from "./run-runtime.ts";
import { waitForResult, waitKeyOf, type WaitOptions } from "./wait.ts";

export interface ReceivedEvent<TPayload = unknown> {
  id: string;
  event: string;
  payload: TPayload;
}

export const events = {
  /**
   * Waits (frozen) for the next event with this name whose payload matches `filter`
   * (field → accepted values; nested objects filter nested fields). Throws WaitTimeoutError after `timeout`.
   */
  async waitForEvent<TPayload = unknown>(options: { event: string; filter?: EventFilter; timeout?: Duration } & WaitOptions): Promise<ReceivedEvent<TPayload>> {
    const key = waitKeyOf(requireRunRuntime("events.waitForEvent"), options);
    const result = await waitForResult({
      kind: "event",
      event: options.event,
      filter: options.filter,
      timeoutMs: options.timeout === undefined ? undefined : durationToMs(options.timeout),
    }, key);
    if (result.kind !== "event") throw new Error(`expected an event, got a ${result.kind} result`);
    return { id: result.id, event: result.event, payload: result.payload as TPayload };
  },
  /** Delivers an event to the runs waiting for it. `id` makes delivery idempotent. */
  async trigger(options: { event: string; payload?: unknown; id?: string }): Promise<{ id: string; duplicate: boolean; matchedWaitpoints: number }> {
    const body = { event: options.event, payload: options.payload ?? null, ...(options.id ? { id: options.id } : {}) };
    const runtime = getRunRuntime();
    if (runtime) return (await runtime.call({ method: "sendEvent", ...body })) as { id: string; duplicate: boolean; matchedWaitpoints: number };
    return apiRequest("POST", "/api/v1/events", body);
  },
};
