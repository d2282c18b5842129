import { z } from "zod";
import { Json, SerializedError } from "./common.ts";
import { LogLevel } from "./api.ts";
import { TaskManifestEntry } from "./manifest.ts";
import { WaitResult } from "./waitpoint.ts";

/**
 * Runner ↔ task process, newline-delimited JSON on fd 3 (a pipe, so a checkpoint can hand the restored
 * process a fresh one). Task code never talks to the server directly: it asks its runner.
 */
export const RunContext = z.object({
  runId: z.string(),
  taskId: z.string(),
  attempt: z.number().int(),
  environment: z.string(),
  project: z.string(),
  version: z.string(),
  tags: z.array(z.string()),
});
export type RunContext = z.infer<typeof RunContext>;

export { RESTORED_NOTICE_CALL_ID, RUNNER_TO_TASK_TYPES } from "./ipc-calls.ts";

export const RunnerToTask = z.discriminatedUnion("type", [
  z.object({ type: z.literal("execute"), ctx: RunContext, payload: Json }),
  z.object({ type: z.literal("reply"), callId: z.number().int(), ok: z.boolean(), result: Json.optional(), error: SerializedError.optional() }),
  /** The wait the process is blocked in has completed (in-process, or right after a restore). */
  z.object({ type: z.literal("wait-result"), callId: z.number().int(), result: WaitResult }),
  /** Close your own connections: a checkpoint follows. Answer with `checkpoint-ready`. */
  z.object({ type: z.literal("prepare-checkpoint") }),
  z.object({ type: z.literal("cancel"), reason: z.string() }),
]);
export type RunnerToTask = z.infer<typeof RunnerToTask>;

export const TaskCall = z.discriminatedUnion("method", [
  /** `key`: which wait of the run this is (see `WaitKey` in runner-api.ts); absent from older SDKs. */
  z.object({ method: z.literal("wait"), spec: z.unknown(), key: z.string().optional() }),
  z.object({ method: z.literal("createRequestToken"), timeoutMs: z.number().int().positive().optional(), key: z.string().optional() }),
  z.object({ method: z.literal("trigger"), items: z.array(z.object({ task: z.string(), payload: Json, options: z.unknown().optional() })), wait: z.boolean() }),
  z.object({ method: z.literal("sendEvent"), event: z.string(), payload: Json, id: z.string().optional() }),
  /** A connection's fresh access token; the runner asks the server with the run's lease (scoped to the run's environment). */
  z.object({ method: z.literal("getConnectionToken"), integration: z.string(), externalId: z.string().optional() }),
]);
export type TaskCall = z.infer<typeof TaskCall>;

export const TaskToRunner = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ready") }),
  z.object({ type: z.literal("indexed"), tasks: z.array(TaskManifestEntry.partial({ filePath: true, exportName: true })) }),
  z.object({ type: z.literal("log"), ts: z.string(), level: LogLevel, message: z.string(), data: z.record(z.string(), z.unknown()).optional() }),
  z.object({ type: z.literal("call"), callId: z.number().int(), call: TaskCall }),
  z.object({ type: z.literal("completed"), output: Json }),
  z.object({ type: z.literal("failed"), error: SerializedError }),
  z.object({ type: z.literal("checkpoint-ready") }),
  /** Index mode only: the bundle could not list its tasks (e.g. a duplicate task id). */
  z.object({ type: z.literal("index-error"), message: z.string() }),
]);
export type TaskToRunner = z.infer<typeof TaskToRunner>;
