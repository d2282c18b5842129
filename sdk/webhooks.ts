import type { EmitterWebhookEvent, EmitterWebhookEventName } from "@octokit/webhooks";
import type Stripe from "stripe";
import type { SubscribeWebhookRequest, UnsubscribeWebhookResponse, WebhookProvider, WebhookSubscriptionOrigin, WebhookSubscriptionView, WebhookTrigger } from "../schemas/index.ts";
import { apiRequest } from "./api-client.ts";
import { defineTask, type TaskDefinition, type TaskOptions, type TaskRunArgs } from "./task.ts";

/** A task's options without `run`, which a webhook task types from its events. */
type WebhookTaskBase<TPayload, TOutput> = Omit<TaskOptions<TPayload, TOutput>, "run">;

export type StripeEventType = Stripe.Event.Type;
/** The Stripe event a task gets for `on`: the `stripe` package's own type, narrowed to those events. */
export type StripeEventOf<E extends StripeEventType | "*"> = "*" extends E ? Stripe.Event : Extract<Stripe.Event, { type: E }>;

export type GithubEventName = EmitterWebhookEventName;
/** `{ id, name, payload }` with `@octokit/webhooks`' payload type for the events listed. */
export type GithubEventOf<E extends GithubEventName | "*"> = "*" extends E ? EmitterWebhookEvent : EmitterWebhookEvent<Exclude<E, "*">>;
export type { WebhookSubscriptionOrigin, WebhookSubscriptionView };

/**
 * Which subscription a GitHub event came through (`webhooks.subscribe`): the integration and
 * externalId whose connection made the hook, and the repository; null for the source's own URL.
 * (A function rather than a field on the event type: intersecting @octokit's event union costs tsc dearly.)
 */
export function subscriptionOf(event: unknown): WebhookSubscriptionOrigin | null {
  const origin = (event as { subscription?: WebhookSubscriptionOrigin } | null)?.subscription;
  return origin && typeof origin === "object" && typeof origin.id === "string" ? origin : null;
}

/** What an `http` source's task gets: the delivery id, the event type and the parsed JSON body. */
export interface HttpWebhookEvent<TBody = unknown> {
  id: string;
  event: string;
  body: TBody;
}

type On<E extends string> = E | readonly [E, ...E[]];

export interface StripeWebhookSource {
  readonly id: string;
  readonly provider: "stripe";
  task<E extends StripeEventType | "*", TOutput = unknown>(
    options: WebhookTaskBase<StripeEventOf<E>, TOutput> & { on: On<E>; run: (event: StripeEventOf<E>, args: TaskRunArgs) => Promise<TOutput> },
  ): TaskDefinition<StripeEventOf<E>, TOutput>;
}

export interface GithubWebhookSource {
  readonly id: string;
  readonly provider: "github";
  task<E extends GithubEventName | "*", TOutput = unknown>(
    options: WebhookTaskBase<GithubEventOf<E>, TOutput> & { on: On<E>; run: (event: GithubEventOf<E>, args: TaskRunArgs) => Promise<TOutput> },
  ): TaskDefinition<GithubEventOf<E>, TOutput>;
}

export interface HttpWebhookSource {
  readonly id: string;
  readonly provider: "http";
  task<TBody = unknown, TOutput = unknown>(
    options: WebhookTaskBase<HttpWebhookEvent<TBody>, TOutput> & { on: On<string>; run: (event: HttpWebhookEvent<TBody>, args: TaskRunArgs) => Promise<TOutput> },
  ): TaskDefinition<HttpWebhookEvent<TBody>, TOutput>;
}

export interface WebhookSourceOptions {
  /** The source's id: the last segment of its URL. */
  id: string;
  /** The environment variable holding the signing secret (defaults: STRIPE_WEBHOOK_SECRET, GITHUB_WEBHOOK_SECRET, <ID>_WEBHOOK_SECRET). */
  secretEnv?: string;
}

export interface HttpWebhookSourceOptions extends WebhookSourceOptions {
  /** How the sender signs: an HMAC of the raw body in `header` (default sha256, hex, no prefix). */
  verify: { header: string; algorithm?: "sha1" | "sha256" | "sha512"; encoding?: "hex" | "base64"; prefix?: string };
  /** Header with the sender's delivery id (deduplication); default: the body's sha256. */
  idHeader?: string;
  /** Header with the event type; default: the body's `type` field, else `webhook`. */
  eventHeader?: string;
}

function source(provider: WebhookProvider, options: WebhookSourceOptions, defaultSecret: string, http?: WebhookTrigger["http"]) {
  // Checked when the build indexes the task (sdk/worker/index-tasks.ts), not here: a task process loads no zod.
  const id = options.id;
  const secretEnv = options.secretEnv ?? defaultSecret;
  return {
    id,
    provider,
    task(taskOptions: WebhookTaskBase<unknown, unknown> & { on: string | readonly string[]; run: (event: any, args: TaskRunArgs) => Promise<unknown> }) {
      const { on, ...rest } = taskOptions;
      const events = [on].flat() as string[];
      if (events.length === 0 || events.some((e) => typeof e !== "string" || e.length === 0)) {
        throw new Error(`task "${taskOptions.id}": on must name at least one ${provider} event`);
      }
      return defineTask(rest, { webhook: { source: id, provider, events: [...new Set(events)], secretEnv, ...(http ? { http } : {}) } });
    },
  };
}

/**
 * Webhook sources: each gets one URL per environment (`stasis webhooks list`) and starts one run per
 * listening task for each verified, first-time delivery, with the event as the payload.
 */
export const webhooks = {
  /** Stripe: `Stripe-Signature` checked with the `stripe` package; the payload is the `Stripe.Event`. */
  stripe(options: WebhookSourceOptions): StripeWebhookSource {
    return source("stripe", options, "STRIPE_WEBHOOK_SECRET") as StripeWebhookSource;
  },
  /** GitHub: `X-Hub-Signature-256` checked with `@octokit/webhooks`; the payload is `{ id, name, payload }`. */
  github(options: WebhookSourceOptions): GithubWebhookSource {
    return source("github", options, "GITHUB_WEBHOOK_SECRET") as GithubWebhookSource;
  },
  /** Any sender that signs the raw body with an HMAC in a header. */
  http(options: HttpWebhookSourceOptions): HttpWebhookSource {
    const http = { verify: options.verify, ...(options.idHeader ? { idHeader: options.idHeader } : {}), ...(options.eventHeader ? { eventHeader: options.eventHeader } : {}) } as WebhookTrigger["http"];
    const defaultSecret = `${String(options.id).toUpperCase().replace(/[^A-Z0-9_]/g, "_")}_WEBHOOK_SECRET`;
    return source("http", options, defaultSecret, http) as HttpWebhookSource;
  },
  /**
   * Subscribes a github source to a repository with a connection (the team's, or one of your users'
   * with `externalId`): Stasis creates the repository webhook with that connection's token, its own
   * URL and a generated secret, and each event starts the source's tasks with `event.subscription`
   * naming the connection. `events` defaults to what the source's tasks listen to. Errors: the
   * connection is broken (CONNECTION_BROKEN), GitHub refused (GITHUB_REPOSITORY_NOT_FOUND, GITHUB_REFUSED).
   */
  async subscribe(options: SubscribeWebhookRequest): Promise<WebhookSubscriptionView> {
    return await apiRequest<WebhookSubscriptionView>("POST", "/api/v1/webhook-subscriptions", options);
  },
  /** Deletes the hook at GitHub, then the subscription. `force` removes the subscription even when GitHub cannot be asked. */
  async unsubscribe(id: string, options: { force?: boolean } = {}): Promise<UnsubscribeWebhookResponse> {
    return await apiRequest<UnsubscribeWebhookResponse>("DELETE", `/api/v1/webhook-subscriptions/${encodeURIComponent(id)}${options.force ? "?force=true" : ""}`);
  },
  /** The environment's subscriptions (no secrets). */
  async subscriptions(filter: { source?: string; integration?: string; externalId?: string } = {}): Promise<WebhookSubscriptionView[]> {
    const query = new URLSearchParams(Object.entries(filter).filter(([, v]) => v !== undefined) as Array<[string, string]>).toString();
    return (await apiRequest<{ data: WebhookSubscriptionView[] }>("GET", `/api/v1/webhook-subscriptions${query ? `?${query}` : ""}`)).data;
  },
};
