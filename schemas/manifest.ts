import { z } from "zod";
import { KeepAliveSetting, Machine, RetryOptions, TaskId } from "./common.ts";
import { ScheduleTrigger, WebhookTrigger } from "./triggers.ts";

/**
 * Safety checkpoints (`checkpoint: { every: "10m" }` on a task or in the config): a running run is
 * checkpointed in the background at this interval (the process keeps running), so a host that dies
 * loses at most that much of the run's work. Code since the last checkpoint runs again after such a
 * loss (at least once for that span). In the manifest as `everyMs`.
 */
export const SafetyCheckpointSetting = z
  .object({ every: z.union([z.number().int().min(1000), z.string().regex(/^\d+(ms|s|m|h|d)$/, "a duration looks like 500ms, 10s, 5m, 2h or 1d")]) })
  .strict();
/** At least a second apart: each safety checkpoint pauses the run for the length of a dump. */
export const MIN_SAFETY_CHECKPOINT_MS = 1000;

export const TaskManifestEntry = z
  .object({
    id: TaskId,
    /** Source file, relative to the project root. */
    filePath: z.string(),
    exportName: z.string(),
    retry: RetryOptions,
    machine: z.object({ preset: z.string(), cpu: z.number().positive(), memory: z.number().int().positive() }).strict(),
    queue: z.object({ name: z.string(), concurrencyLimit: z.number().int().positive().optional() }).strict(),
    maxDuration: z.number().int().positive().optional(),
    /** Safety checkpoints every this many ms while the run runs (see SafetyCheckpointSetting). */
    checkpoint: z.object({ everyMs: z.number().int().min(MIN_SAFETY_CHECKPOINT_MS) }).strict().optional(),
    /** Opt-in process reuse (`processKeepAlive`): absent, each run gets a fresh process. */
    processKeepAlive: KeepAliveSetting.optional(),
    /** Runs for deliveries of a webhook source (`webhooks.stripe(…).task`). */
    webhook: WebhookTrigger.optional(),
    /** Runs on a cron schedule while this version is promoted (`schedules.task`). */
    schedule: ScheduleTrigger.optional(),
  })
  .strict();
export type TaskManifestEntry = z.infer<typeof TaskManifestEntry>;

/** The task index of one build, stored in the image and in the deploy store. */
export const BuildManifest = z
  .object({
    schemaVersion: z.literal(1),
    project: z.string(),
    /** Entry file of the bundle, relative to the app directory of the image. */
    entry: z.string(),
    tasks: z.array(TaskManifestEntry),
    externals: z.array(z.object({ name: z.string(), version: z.string() }).strict()).default([]),
    sdkVersion: z.string(),
    /** The Node the bundle is compiled for (`node20`); the Node an image runs is its label `stasis.node-version`. */
    nodeVersion: z.string(),
    /** sha256 of the bundle contents, to tell a no-change rebuild from a real one. */
    contentHash: z.string(),
  })
  .strict();
export type BuildManifest = z.infer<typeof BuildManifest>;

export { Machine, RetryOptions };
