import { z } from "zod";
import { ExternalId, IntegrationSlug } from "./connections.ts";
import { WebhookSourceId } from "./triggers.ts";

/**
 * Webhook subscriptions: a webhook source subscribed, with a connection's token, to an account's
 * events at the provider (GitHub: a repository webhook Stasis creates, signs and deletes). Each one
 * has its own delivery URL and its own generated signing secret.
 */

/** `owner/repo` as GitHub spells it. */
export const GithubRepository = z
  .string()
  .max(140)
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/, "repository is owner/name (e.g. octocat/hello-world)");

/** A GitHub webhook event as a hook subscribes to it: a top-level name (`push`, `issues`) or `*`. */
export const GithubHookEvent = z.string().regex(/^(\*|[a-z_]{1,64})$/, "a GitHub hook event is a top-level name like push or issues (no .action), or *");

export const SubscribeWebhookRequest = z
  .object({
    /** A `github` webhook source of the environment's promoted version. */
    source: WebhookSourceId,
    /** The integration whose connection makes the hook (provider github). */
    integration: IntegrationSlug,
    /** Whose connection: one of the app's users; none = the team's connection. */
    externalId: ExternalId.optional(),
    repository: GithubRepository,
    /** Events the hook sends; default: those the source's tasks listen to. */
    events: z.array(GithubHookEvent).min(1).max(100).optional(),
  })
  .strict();
export type SubscribeWebhookRequest = z.input<typeof SubscribeWebhookRequest>;

export const WebhookSubscriptionView = z.object({
  id: z.string(),
  source: z.string(),
  provider: z.literal("github"),
  integration: z.string(),
  externalId: z.string().nullable(),
  /** The connected account (who owns the hook at the provider). */
  account: z.string().nullable(),
  repository: z.string(),
  events: z.array(z.string()),
  /** The provider's id of the hook. */
  hookId: z.number().int(),
  /** Where the provider delivers (the subscription's own URL). */
  url: z.string(),
  connectionStatus: z.enum(["active", "broken"]),
  createdAt: z.string(),
});
export type WebhookSubscriptionView = z.infer<typeof WebhookSubscriptionView>;

export const ListWebhookSubscriptionsQuery = z.object({ source: WebhookSourceId.optional(), integration: IntegrationSlug.optional(), externalId: ExternalId.optional() }).strict();
export const ListWebhookSubscriptionsResponse = z.object({ project: z.string(), environment: z.string(), data: z.array(WebhookSubscriptionView) });
export const WebhookSubscriptionParams = z.object({ id: z.string().regex(/^whs_[0-9a-f]{24}$/, "a subscription id is whs_ and 24 hex digits") }).strict();
export const UnsubscribeWebhookQuery = z
  .object({ force: z.enum(["true", "false"]).optional().transform((v) => v === "true") })
  .strict();
export const UnsubscribeWebhookResponse = z.object({
  id: z.string(),
  deleted: z.boolean(),
  /** Whether the hook is gone at the provider (false only with force, when the provider could not be asked). */
  hookDeleted: z.boolean(),
  /** Why the hook could not be deleted (remove it in the repository's settings). */
  hookError: z.string().nullable(),
});
export type UnsubscribeWebhookResponse = z.infer<typeof UnsubscribeWebhookResponse>;

/** What a delivery through a subscription adds to the task's payload: which subscription and whose connection. */
export const WebhookSubscriptionOrigin = z.object({
  id: z.string(),
  integration: z.string(),
  externalId: z.string().nullable(),
  repository: z.string(),
});
export type WebhookSubscriptionOrigin = z.infer<typeof WebhookSubscriptionOrigin>;

export const SubscriptionDeliveryParams = z
  .object({ project: z.string().min(1).max(63), environment: z.string().min(1).max(120), sourceId: WebhookSourceId, subscriptionId: z.string().min(1).max(64) })
  .strict();
