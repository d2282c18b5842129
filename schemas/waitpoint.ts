import { z } from "zod";
import { Json, SerializedError, TaskId } from "./common.ts";
import { MAX_BATCH_ITEMS, TriggerOptions } from "./api.ts";

/**
 * Event filter, as in the seed: field → list of accepted values; nested objects filter nested fields.
 * `{ type: ["checkout"], cart: { currency: ["EUR", "USD"] } }`
 */
export type EventFilter = { [field: string]: Array<string | number | boolean | null> | EventFilter };
export const EventFilter: z.ZodType<EventFilter> = z.lazy(() =>
  z.record(z.string(), z.union([z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])), EventFilter])),
);

/** What a run waits for. Deadlines are computed by the server's clock, never by the frozen process. */
export const WaitSpec = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("duration"), ms: z.number().int().nonnegative() }).strict(),
  z.object({ kind: z.literal("until"), date: z.iso.datetime({ offset: true }) }).strict(),
  z.object({ kind: z.literal("event"), event: z.string().min(1), filter: EventFilter.optional(), timeoutMs: z.number().int().positive().optional() }).strict(),
  /** Waits for the request token created earlier by `createRequestToken`. */
  z.object({ kind: z.literal("request"), token: z.string().min(1) }).strict(),
  z.object({ kind: z.literal("runs"), runIds: z.array(z.string()).min(1) }).strict(),
]);
export type WaitSpec = z.infer<typeof WaitSpec>;

export const ReceivedRequest = z.object({
  method: z.string(),
  headers: z.record(z.string(), z.string()),
  query: z.record(z.string(), z.string()),
  body: Json,
  receivedAt: z.string(),
});
export type ReceivedRequest = z.infer<typeof ReceivedRequest>;

export const ChildRunResult = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), runId: z.string(), taskId: z.string(), output: Json }),
  z.object({ ok: z.literal(false), runId: z.string(), taskId: z.string(), error: SerializedError }),
]);
export type ChildRunResult = z.infer<typeof ChildRunResult>;

/** The value a completed waitpoint hands back to the waiting run. */
export const WaitResult = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("duration") }),
  z.object({ kind: z.literal("event"), id: z.string(), event: z.string(), payload: Json }),
  z.object({ kind: z.literal("request"), request: ReceivedRequest }),
  z.object({ kind: z.literal("runs"), results: z.array(ChildRunResult) }),
  z.object({ kind: z.literal("timeout"), message: z.string() }),
  z.object({ kind: z.literal("canceled") }),
]);
export type WaitResult = z.infer<typeof WaitResult>;

export const TriggerChildrenRequest = z
  .object({ items: z.array(z.object({ task: TaskId, payload: Json, options: TriggerOptions.optional() }).strict()).min(1).max(MAX_BATCH_ITEMS), wait: z.boolean() })
  .strict();
export type TriggerChildrenRequest = z.infer<typeof TriggerChildrenRequest>;
