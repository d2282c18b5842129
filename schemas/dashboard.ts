import { z } from "zod";
import { EnvironmentSlug } from "./common.ts";
import { AttemptView } from "./api.ts";
import { Version } from "./common.ts";
import { RunStatus } from "./status.ts";

/** Sign in to the dashboard with an environment API key or the admin token. */
export const SignInRequest = z.object({ credential: z.string().min(1).max(512) }).strict();

/** Who the dashboard session is, and the CSRF token its state-changing requests send. */
export const SessionView = z.object({
  kind: z.enum(["admin", "env"]),
  /** For an environment session: its project and environment. */
  project: z.string().nullable(),
  environment: EnvironmentSlug.nullable(),
  csrfToken: z.string(),
  expiresAt: z.string(),
});
export type SessionView = z.infer<typeof SessionView>;

/** Admin: a one-time login link (what `stasis dev` prints); without a body, an admin session. */
export const LoginTokenRequest = z.object({ project: z.string().min(1), environment: EnvironmentSlug }).strict();
export const LoginTokenResponse = z.object({ token: z.string(), url: z.string(), expiresAt: z.string() });

export const LoginLinkBody = z.object({ token: z.string().min(1).max(256) }).strict();

/** One wait of a run, as its timeline shows it. */
export const TimelineWait = z.object({
  id: z.string(),
  kind: z.string(),
  key: z.string().nullable(),
  status: z.string(),
  /** What it waits for, in words: "10s", "event order.paid", "2 runs". */
  detail: z.string(),
  createdAt: z.string(),
  completedAt: z.string().nullable(),
  dueAt: z.string().nullable(),
  /** True when the process was checkpointed (frozen) for this wait; false when it stayed alive. */
  frozen: z.boolean(),
  checkpointBytes: z.number().nullable(),
  suspendedAt: z.string().nullable(),
  resumedAt: z.string().nullable(),
  resumedRunnerId: z.string().nullable(),
});
export type TimelineWait = z.infer<typeof TimelineWait>;

export const RunTimeline = z.object({
  runId: z.string(),
  attempts: z.array(AttemptView),
  waits: z.array(TimelineWait),
  children: z.array(z.object({ id: z.string(), taskId: z.string(), status: RunStatus, createdAt: z.string() })),
});
export type RunTimeline = z.infer<typeof RunTimeline>;

/** `environment` (`<project>/<environment>`): the admin's choice, as the x-stasis-environment header names it elsewhere. */
export const StreamRunsQuery = z.object({ run: z.string().optional(), environment: z.string().optional() }).strict();

/** What the live stream sends (`event: run`): a run changed or got log lines; the page re-reads it. */
export const RunChangeEvent = z.object({ id: z.string(), what: z.string() });
export type RunChangeEvent = z.infer<typeof RunChangeEvent>;



/** Admin: copy a deployed version to another environment of the project as a new version there. */
export const CopyDeploymentRequest = z
  .object({ version: Version, from: EnvironmentSlug, to: EnvironmentSlug, promote: z.boolean().default(false) })
  .strict()
  .refine((body) => body.from !== body.to, { message: "from and to name the same environment", path: ["to"] });

/** `GET /api/v1/tasks`: how far back the run charts look, in hours (24 buckets). */
export const TasksQuery = z.object({ hours: z.coerce.number().int().min(1).max(720).default(24) }).strict();
export type TasksQuery = z.infer<typeof TasksQuery>;

/** One time bucket of a task's recent runs: how many were created in it, by status now, and how long the finished ones took. */
export const TaskRunBucket = z.object({
  start: z.string(),
  /** Runs created in this bucket, by their current status (only statuses with runs). */
  counts: z.record(z.string(), z.number().int()),
  /** Duration (started → finished, wall time, frozen waits included) percentiles of the bucket's finished runs, in ms. */
  p50Ms: z.number().nullable(),
  p95Ms: z.number().nullable(),
});
export type TaskRunBucket = z.infer<typeof TaskRunBucket>;

/** A task of the promoted version: its settings from the version's manifest, and its recent runs. */
export const TaskOverview = z.object({
  id: z.string(),
  filePath: z.string(),
  exportName: z.string(),
  retry: z.object({ maxAttempts: z.number(), factor: z.number(), minTimeoutInMs: z.number(), maxTimeoutInMs: z.number(), randomize: z.boolean() }),
  machine: z.object({ preset: z.string(), cpu: z.number(), memory: z.number() }),
  queue: z.object({ name: z.string(), concurrencyLimit: z.number().nullable() }),
  maxDurationS: z.number().nullable(),
  /** How runs start besides a trigger: "schedule <cron>", "webhook <source>"; null for none. */
  trigger: z.string().nullable(),
  /** Over the whole window, by status. */
  totals: z.record(z.string(), z.number().int()),
  p50Ms: z.number().nullable(),
  p95Ms: z.number().nullable(),
  buckets: z.array(TaskRunBucket),
});
export type TaskOverview = z.infer<typeof TaskOverview>;

export const TasksView = z.object({
  /** The promoted version whose manifest lists the tasks; null when nothing is promoted. */
  version: z.string().nullable(),
  from: z.string(),
  to: z.string(),
  bucketSeconds: z.number().int(),
  tasks: z.array(TaskOverview),
});
export type TasksView = z.infer<typeof TasksView>;
