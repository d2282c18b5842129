// `stasis/sdk`: what task code and app code import.
export { task, tasks, type TaskDefinition, type TaskOptions, type TaskRunArgs } from "./task.ts";
export { wait, type RequestWait, type WaitOptions } from "./wait.ts";
export { events, type ReceivedEvent } from "./events.ts";
export { webhooks, subscriptionOf, type WebhookSubscriptionOrigin, type WebhookSubscriptionView, type StripeEventOf, type StripeEventType, type GithubEventOf, type GithubEventName, type HttpWebhookEvent, type StripeWebhookSource, type GithubWebhookSource, type HttpWebhookSource } from "./webhooks.ts";
export { schedules, type ScheduledTaskOptions, type SchedulePayload, type ScheduleView } from "./schedules.ts";
export { rollback } from "./rollback.ts";
export { logger } from "./logger.ts";
export { runs, type Run } from "./runs.ts";
export { envvars } from "./envvars.ts";
export { connections, type ConnectionToken } from "./connections.ts";
export { configure } from "./api-client.ts";
export { defineConfig } from "./config.ts";
export type { TaskRunResult } from "./result.ts";
export type { Duration, DurationObject } from "./duration.ts";
export { AbortTaskRunError, WaitTimeoutError, ChildRunFailedError, StasisApiError, RunPollTimeoutError } from "./errors.ts";
export type { RunContext, ReceivedRequest, EventFilter } from "../schemas/index.ts";
