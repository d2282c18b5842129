import { z } from "zod";
import { TaskId } from "./common.ts";

/**
 * What starts a task besides the API: a webhook source or a cron schedule. These shapes sit in the
 * build manifest (one per task entry) and in the API bodies of webhooks and schedules.
 */

export const WebhookProvider = z.enum(["stripe", "github", "http"]);
export type WebhookProvider = z.infer<typeof WebhookProvider>;

/** A source's id: one URL segment (`/api/v1/webhooks/<project>/<environment>/<source>`). */
export const WebhookSourceId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]*$/, "a webhook source id uses letters, digits, '-' and '_'");

/** The name of the environment variable holding a signing secret (a plain regex: the fuzzer reads it). */
export const SecretVariableName = z.string().max(128).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a variable name matches ^[A-Za-z_][A-Za-z0-9_]*$");

/** How a generic HTTP sender signs: an HMAC of the raw body in one header. */
export const HttpWebhookVerify = z
  .object({
    /** The header carrying the signature, e.g. `X-Signature`. */
    header: z.string().min(1).max(128).regex(/^[A-Za-z0-9-]+$/, "a header name uses letters, digits and '-'"),
    algorithm: z.enum(["sha1", "sha256", "sha512"]).default("sha256"),
    encoding: z.enum(["hex", "base64"]).default("hex"),
    /** Text before the digest in the header, e.g. `sha256=`. */
    prefix: z.string().max(32).default(""),
  })
  .strict();
export type HttpWebhookVerify = z.infer<typeof HttpWebhookVerify>;

export const HttpWebhookOptions = z
  .object({
    verify: HttpWebhookVerify,
    /** Header with the sender's delivery id (deduplication); default: the sha256 of the body. */
    idHeader: z.string().min(1).max(128).optional(),
    /** Header with the event type; default: the body's top-level `type` field, else `webhook`. */
    eventHeader: z.string().min(1).max(128).optional(),
  })
  .strict();
export type HttpWebhookOptions = z.infer<typeof HttpWebhookOptions>;

export const WebhookTrigger = z
  .object({
    source: WebhookSourceId,
    provider: WebhookProvider,
    /** Event types this task runs for; `*` is every event. GitHub names are `issues` or `issues.opened`. */
    events: z.array(z.string().min(1).max(256)).min(1).max(100),
    /** Variable of the environment holding the signing secret. */
    secretEnv: SecretVariableName,
    http: HttpWebhookOptions.optional(),
  })
  .strict();
export type WebhookTrigger = z.infer<typeof WebhookTrigger>;

/** A cron expression (5 fields, or 6 with seconds); parsed by croner on the server and in the SDK. */
export const CronExpression = z.string().min(1).max(256);
/** An IANA time zone name, e.g. `Europe/Paris`; checked against the runtime's zone database. */
export const TimezoneName = z.string().min(1).max(64);

export const ScheduleTrigger = z.object({ cron: CronExpression, timezone: TimezoneName }).strict();
export type ScheduleTrigger = z.infer<typeof ScheduleTrigger>;

// ---- webhooks API

export const WebhookDeliveryParams = z.object({ project: z.string().min(1).max(63), environment: z.string().min(1).max(120), sourceId: WebhookSourceId }).strict();

export const WebhookDeliveryResponse = z.object({
  delivery: z.string(),
  /** The provider's event or delivery id. */
  id: z.string(),
  duplicate: z.boolean(),
  runs: z.array(z.string()),
});

export const WebhookSourceView = z.object({
  id: z.string(),
  provider: WebhookProvider,
  url: z.string(),
  events: z.array(z.string()),
  tasks: z.array(z.string()),
  secretEnv: z.string(),
  /** Whether the environment has the signing secret's variable. */
  secretSet: z.boolean(),
  /** What to set in the provider's settings. */
  setup: z.array(z.string()),
});
export type WebhookSourceView = z.infer<typeof WebhookSourceView>;
export const ListWebhookSourcesResponse = z.object({ project: z.string(), environment: z.string(), version: z.string().nullable(), data: z.array(WebhookSourceView) });

export const DeliveryStatus = z.enum(["ACCEPTED", "DUPLICATE", "REJECTED"]);
export const WebhookDeliveryView = z.object({
  id: z.string(),
  source: z.string(),
  provider: z.string(),
  status: DeliveryStatus,
  /** The provider's event or delivery id, when the delivery was verified. */
  eventId: z.string().nullable(),
  event: z.string().nullable(),
  verified: z.boolean(),
  /** Why it was refused (bad or stale signature, missing secret, body not JSON). */
  failure: z.string().nullable(),
  runs: z.array(z.string()),
  /** The webhook subscription it came through (null: the source's own URL). */
  subscription: z.string().nullable(),
  receivedAt: z.string(),
});
export type WebhookDeliveryView = z.infer<typeof WebhookDeliveryView>;
export const ListDeliveriesQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).default(25) }).strict();
export const ListDeliveriesResponse = z.object({ data: z.array(WebhookDeliveryView) });
export const WebhookSourceParams = z.object({ sourceId: WebhookSourceId }).strict();

// ---- schedules API

export const ScheduleType = z.enum(["DECLARATIVE", "IMPERATIVE"]);
export const ScheduleView = z.object({
  id: z.string(),
  task: z.string(),
  type: ScheduleType,
  cron: z.string(),
  timezone: z.string(),
  externalId: z.string().nullable(),
  deduplicationKey: z.string().nullable(),
  active: z.boolean(),
  /** The next tick that will start a run (null when inactive). */
  nextRun: z.string().nullable(),
  /** The last tick that started a run. */
  lastRun: z.string().nullable(),
  createdAt: z.string(),
});
export type ScheduleView = z.infer<typeof ScheduleView>;

export const CreateScheduleRequest = z
  .object({
    task: TaskId,
    cron: CronExpression,
    timezone: TimezoneName.default("UTC"),
    /** Your own id for what this schedule is for (a user, a tenant); given back in every payload. */
    externalId: z.string().min(1).max(256).optional(),
    /** A second create with the same key updates that schedule instead of adding one. */
    deduplicationKey: z.string().min(1).max(256).optional(),
  })
  .strict();
export type CreateScheduleRequest = z.input<typeof CreateScheduleRequest>;
export const UpdateScheduleRequest = z
  .object({ task: TaskId.optional(), cron: CronExpression.optional(), timezone: TimezoneName.optional(), externalId: z.string().min(1).max(256).nullable().optional() })
  .strict();
export type UpdateScheduleRequest = z.infer<typeof UpdateScheduleRequest>;
export const ScheduleIdParams = z.object({ id: z.string().min(1).max(128) }).strict();
export const ListSchedulesQuery = z.object({ task: z.string().max(128).optional() }).strict();
export const ListSchedulesResponse = z.object({ data: z.array(ScheduleView) });
export const DeleteScheduleResponse = z.object({ id: z.string(), deleted: z.boolean() });

/** What a scheduled task's run gets. */
export const SchedulePayload = z.object({
  scheduleId: z.string(),
  type: ScheduleType,
  /** The tick this run is for (ISO). */
  timestamp: z.string(),
  /** The tick of the schedule's previous run, if any. */
  lastTimestamp: z.string().nullable(),
  timezone: z.string(),
  /** The next five ticks after this one. */
  upcoming: z.array(z.string()),
  externalId: z.string().nullable(),
});
export type SchedulePayload = z.infer<typeof SchedulePayload>;
