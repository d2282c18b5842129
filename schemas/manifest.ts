import { z } from "zod";
import { KeepAliveSetting, Machine, RetryOptions, TaskId } from "./common.ts";
import { ScheduleTrigger, WebhookTrigger } from "./triggers.ts";

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
