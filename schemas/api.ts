import { z } from "zod";
import { EnvironmentSlug, Json, SerializedError, TaskId, Version } from "./common.ts";
import { ImageRef } from "./image-ref.ts";
import { BuildManifest } from "./manifest.ts";
import { DeploymentStatus, RunStatus } from "./status.ts";

/** A duration as the SDK and CLI accept it: milliseconds, or "500ms", "10s", "5m", "2h", "1d". */
export const DurationInput = z.union([
  z.number().int().nonnegative(),
  z.string().regex(/^\d+(ms|s|m|h|d)$/, "a duration looks like 500ms, 10s, 5m, 2h or 1d"),
]);

export const TriggerOptions = z
  .object({
    idempotencyKey: z.string().min(1).max(256).optional(),
    /** A duration ("10m") or an ISO date. */
    delay: z.union([DurationInput, z.iso.datetime({ offset: true })]).optional(),
    tags: z.array(z.string().min(1).max(128)).max(10).optional(),
    version: Version.optional(),
    maxAttempts: z.number().int().min(1).max(100).optional(),
    /** Seconds; overrides the task's maxDuration. At most 2^31-1 (a PostgreSQL integer). */
    maxDuration: z.number().int().positive().max(2_147_483_647).optional(),
  })
  .strict();
export type TriggerOptions = z.infer<typeof TriggerOptions>;

export const TriggerRequest = z.object({ payload: Json, options: TriggerOptions.optional() }).strict();
export type TriggerRequest = z.infer<typeof TriggerRequest>;

export const TriggerResponse = z.object({ id: z.string(), isCached: z.boolean() });
export type TriggerResponse = z.infer<typeof TriggerResponse>;

/** Items one batch trigger may carry (inserted with one statement; together within the request body limit). */
export const MAX_BATCH_ITEMS = 1000;

export const BatchTriggerRequest = z
  .object({ items: z.array(z.object({ task: TaskId, payload: Json, options: TriggerOptions.optional() }).strict()).min(1).max(MAX_BATCH_ITEMS) })
  .strict();
export const BatchTriggerResponse = z.object({ runs: z.array(TriggerResponse) });

export const AttemptView = z.object({
  number: z.number().int(),
  status: z.enum(["EXECUTING", "COMPLETED", "FAILED", "CANCELED", "LOST"]),
  runnerId: z.string().nullable(),
  error: SerializedError.nullable(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
});

export const RunView = z.object({
  id: z.string(),
  taskId: z.string(),
  status: RunStatus,
  environment: z.string(),
  version: Version.nullable(),
  payload: Json,
  output: Json,
  error: SerializedError.nullable(),
  attempts: z.number().int(),
  attemptDetails: z.array(AttemptView).optional(),
  tags: z.array(z.string()),
  idempotencyKey: z.string().nullable(),
  parentRunId: z.string().nullable(),
  replayOf: z.string().nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  completedAt: z.string().nullable(),
  /** When a DELAYED or RETRYING run becomes claimable. */
  availableAt: z.string().nullable(),
  durationMs: z.number().nullable(),
});
export type RunView = z.infer<typeof RunView>;

export const ListRunsQuery = z
  .object({
    status: RunStatus.optional(),
    task: z.string().optional(),
    tag: z.string().optional(),
    /** Runs locked to this version. */
    version: Version.optional(),
    /** Runs created at or after / before this time. */
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
    limit: z.coerce.number().int().min(1).max(200).default(25),
    /** Run id to continue after (runs are listed newest first). */
    cursor: z.string().optional(),
  })
  .strict();
export const ListRunsResponse = z.object({ data: z.array(RunView), nextCursor: z.string().nullable() });

export const ReplayRequest = z.object({ version: Version.optional() }).strict();

export const LogLevel = z.enum(["debug", "info", "warn", "error"]);
export type LogLevel = z.infer<typeof LogLevel>;
export const LogLine = z.object({
  seq: z.number().int(),
  ts: z.string(),
  level: LogLevel,
  message: z.string(),
  attempt: z.number().int(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type LogLine = z.infer<typeof LogLine>;
export const LogsQuery = z
  .object({ after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(5000).default(1000), waitMs: z.coerce.number().int().min(0).max(30_000).default(0) })
  .strict();
export const LogsResponse = z.object({ data: z.array(LogLine), next: z.number().int(), runFinished: z.boolean() });

export const SendEventRequest = z
  .object({ event: z.string().min(1).max(256), payload: Json, id: z.string().min(1).max(256).optional() })
  .strict();
export const SendEventResponse = z.object({ id: z.string(), duplicate: z.boolean(), matchedWaitpoints: z.number().int() });

export const CommitInfo = z
  .object({
    /** The commit that was built (for a pull request: its merge commit). */
    sha: z.string().optional(),
    /** A pull request's head commit, when `sha` is its merge commit. */
    headSha: z.string().optional(),
    branch: z.string().optional(),
    message: z.string().optional(),
    committedAt: z.string().optional(),
    repository: z.string().optional(),
  })
  .strict();

/** Register a built image as a new version of an environment. */
export const CreateDeploymentRequest = z
  .object({
    /** Image reference with digest, e.g. `oci-layout:/abs/dir@sha256:…` or `127.0.0.1:5000/proj@sha256:…`. */
    imageRef: ImageRef,
    imageDigest: z.string().regex(/^sha256:[a-f0-9]{64}$/, "imageDigest is sha256:<64 hex>"),
    manifest: BuildManifest,
    commit: CommitInfo.optional(),
    promote: z.boolean().default(true),
  })
  .strict();
export type CreateDeploymentRequest = z.infer<typeof CreateDeploymentRequest>;

/** Two-phase deploys (CI builds): reserve a version first, then finish it. */
export const StartDeploymentRequest = z.object({ commit: CommitInfo.optional() }).strict();
export const FinishDeploymentRequest = z
  .object({ imageRef: ImageRef, imageDigest: CreateDeploymentRequest.shape.imageDigest, manifest: BuildManifest, promote: z.boolean().default(true) })
  .strict();
export const FailDeploymentRequest = z.object({ reason: z.string().min(1).max(10_000), status: z.enum(["FAILED", "CANCELED"]).default("FAILED") }).strict();

export const DeploymentView = z.object({
  id: z.string(),
  environment: z.string(),
  version: Version,
  status: DeploymentStatus,
  imageRef: z.string().nullable(),
  imageDigest: z.string().nullable(),
  /** The hash of the built bundle: equal hashes, equal code. */
  contentHash: z.string().nullable(),
  tasks: z.array(z.string()),
  promoted: z.boolean(),
  commit: CommitInfo.nullable(),
  failureReason: z.string().nullable(),
  createdAt: z.string(),
  deployedAt: z.string().nullable(),
  /** Set on a version copied from another environment (same image digest and manifest, no rebuild). */
  copiedFrom: z.object({ environment: z.string(), version: Version }).nullable().optional(),
});
export type DeploymentView = z.infer<typeof DeploymentView>;

export const EnvironmentView = z.object({
  slug: EnvironmentSlug,
  project: z.string(),
  archived: z.boolean(),
  promotedVersion: Version.nullable(),
});

/** Admin: create a project (idempotent) with its standard environments. */
export const CreateProjectRequest = z.object({ slug: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/), repository: z.string().optional() }).strict();
export const CreateProjectResponse = z.object({
  project: z.string(),
  created: z.boolean(),
  /** Keys of the environments this call created; empty when the project existed already. */
  environments: z.array(z.object({ environment: EnvironmentSlug, apiKey: z.string() })),
});
export const CreateEnvironmentRequest = z.object({ slug: EnvironmentSlug }).strict();
/** API keys are returned once, at creation; the server keeps only their hash. */
export const ApiKeyView = z.object({ environment: EnvironmentSlug, apiKey: z.string() });

/** `owner/name` of a GitHub repository. */
export const RepositoryName = z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, "repository is owner/name");

/** Admin: one project, its linked repository and its environments. */
export const ProjectView = z.object({
  slug: z.string(),
  repository: z.string().nullable(),
  createdAt: z.string(),
  environments: z.array(EnvironmentView),
});
export const ListProjectsResponse = z.object({ data: z.array(ProjectView) });
export const LinkRepositoryRequest = z.object({ repository: RepositoryName.nullable() }).strict();
export const ListEnvironmentsResponse = z.object({ data: z.array(EnvironmentView) });
/** A key as listed: never the key itself, which is shown once when it is made. */
export const ApiKeyInfo = z.object({ id: z.string(), environment: EnvironmentSlug, createdAt: z.string(), revokedAt: z.string().nullable() });
export const ListKeysResponse = z.object({ data: z.array(ApiKeyInfo) });
export const CreateKeyRequest = z.object({ revokeOthers: z.boolean().default(false) }).strict();
export const CreateKeyResponse = ApiKeyView.extend({ id: z.string(), revoked: z.number().int() });

export const WhoAmIResponse = z.object({ project: z.string(), environment: EnvironmentSlug });

/** Runs one bulk cancel or replay may name (each is its own transaction: per-run outcomes). */
export const MAX_BULK_RUNS = 100;
export const BulkRunsRequest = z
  .object({
    ids: z
      .array(z.string().min(1).max(100))
      .min(1)
      .max(MAX_BULK_RUNS, `at most ${MAX_BULK_RUNS} runs per request`)
      .refine((ids) => new Set(ids).size === ids.length, "ids must not repeat"),
    version: Version.optional(),
  })
  .strict();
export type BulkRunsRequest = z.infer<typeof BulkRunsRequest>;
export const BulkRunOutcome = z.object({
  id: z.string(),
  ok: z.boolean(),
  /** The run's status after a cancel; for a replay, the new run's id. */
  status: z.string().optional(),
  newRunId: z.string().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export const BulkRunsResponse = z.object({ done: z.number().int(), failed: z.number().int(), results: z.array(BulkRunOutcome) });
export type BulkRunsResponse = z.infer<typeof BulkRunsResponse>;

/** The admin's run list across every environment: the same filters but a version (versions are per environment). */
export const ListAllRunsQuery = ListRunsQuery.omit({ version: true });
export const AllRunsView = RunView.extend({ project: z.string() });
export const ListAllRunsResponse = z.object({ data: z.array(AllRunsView), nextCursor: z.string().nullable() });
