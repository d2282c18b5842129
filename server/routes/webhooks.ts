import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import {
  ApiErrorBody,
  ListDeliveriesQuery,
  ListDeliveriesResponse,
  ListWebhookSourcesResponse,
  MAX_PAYLOAD_BYTES,
  WebhookDeliveryParams,
  WebhookDeliveryResponse,
  WebhookSourceParams,
  ListWebhookSubscriptionsQuery,
  ListWebhookSubscriptionsResponse,
  SubscribeWebhookRequest,
  SubscriptionDeliveryParams,
  UnsubscribeWebhookQuery,
  UnsubscribeWebhookResponse,
  WebhookSubscriptionParams,
  WebhookSubscriptionView,
  type WebhookDeliveryView,
} from "../../schemas/index.ts";
import type { Engine } from "../engine/context.ts";
import { envOf } from "../http/auth-hook.ts";
import { listVariables } from "../secrets/envvar-store.ts";
import { receiveDelivery } from "../webhooks/receive-delivery.ts";
import { resolveWebhookTarget, sourceViews } from "../webhooks/sources.ts";
import { subscribeWebhook } from "../webhooks/subscribe.ts";
import { listSubscriptions, unsubscribeWebhook } from "../webhooks/subscriptions.ts";

/** A delivery's body; the run payload wraps it, so it stays under the run payload limit. */
export const WEBHOOK_BODY_LIMIT = MAX_PAYLOAD_BYTES - 64 * 1024;

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody, 413: ApiErrorBody, 502: ApiErrorBody, 503: ApiErrorBody };

export async function webhookRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  // The delivery endpoint in a scope of its own: its body stays raw bytes (a Buffer whatever the
  // content type), because the signature is over those bytes and is checked before any parsing.
  await root.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: WEBHOOK_BODY_LIMIT }, (_request, body, done) => done(null, body));
    const app = scope.withTypeProvider<ZodTypeProvider>();
    app.post(
      "/api/v1/webhooks/:project/:environment/:sourceId",
      { config: { auth: "none" }, bodyLimit: WEBHOOK_BODY_LIMIT, schema: { params: WebhookDeliveryParams, response: { 200: WebhookDeliveryResponse, ...errors } } },
      async (request) => {
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        return await receiveDelivery(engine, request.params, raw, request.headers);
      },
    );
    // A subscription's own URL: the hook Stasis created at GitHub with that subscription's secret.
    app.post(
      "/api/v1/webhooks/:project/:environment/:sourceId/:subscriptionId",
      { config: { auth: "none" }, bodyLimit: WEBHOOK_BODY_LIMIT, schema: { params: SubscriptionDeliveryParams, response: { 200: WebhookDeliveryResponse, ...errors } } },
      async (request) => {
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        return await receiveDelivery(engine, request.params, raw, request.headers);
      },
    );
  });

  const app = root.withTypeProvider<ZodTypeProvider>();
  const env = { auth: "env" as const };

  app.get("/api/v1/webhook-sources", { config: env, schema: { response: { 200: ListWebhookSourcesResponse, ...errors } } }, async (request) => {
    const p = envOf(request);
    const target = await resolveWebhookTarget(engine.db, p.project, p.environment);
    const names = new Set((await listVariables(engine.db, engine.keyring, { projectId: p.projectId, project: p.project, scope: p.environment }, false)).map((v) => v.name));
    return { project: p.project, environment: p.environment, version: target.version, data: sourceViews(target, engine.config.publicUrl, names) };
  });

  app.post("/api/v1/webhook-subscriptions", { config: env, schema: { body: SubscribeWebhookRequest, response: { 200: WebhookSubscriptionView, ...errors } } }, async (request) => {
    return await subscribeWebhook(engine, envOf(request), request.body);
  });

  app.get("/api/v1/webhook-subscriptions", { config: env, schema: { querystring: ListWebhookSubscriptionsQuery, response: { 200: ListWebhookSubscriptionsResponse, ...errors } } }, async (request) => {
    const p = envOf(request);
    return { project: p.project, environment: p.environment, data: await listSubscriptions(engine.db, engine.config.publicUrl, p, request.query) };
  });

  app.delete(
    "/api/v1/webhook-subscriptions/:id",
    { config: env, schema: { params: WebhookSubscriptionParams, querystring: UnsubscribeWebhookQuery, response: { 200: UnsubscribeWebhookResponse, ...errors } } },
    async (request) => await unsubscribeWebhook(engine, envOf(request), request.params.id, request.query.force),
  );

  app.get(
    "/api/v1/webhook-sources/:sourceId/deliveries",
    { config: env, schema: { params: WebhookSourceParams, querystring: ListDeliveriesQuery, response: { 200: ListDeliveriesResponse, ...errors } } },
    async (request) => {
      const p = envOf(request);
      const rows = await engine.db("webhook_deliveries")
        .where({ environment_id: p.environmentId, source_id: request.params.sourceId })
        .orderBy([{ column: "received_at", order: "desc" }, { column: "id", order: "desc" }])
        .limit(request.query.limit)
        .select("id", "source_id", "provider", "status", "event_id", "event_type", "verified", "failure", "run_ids", "received_at", "subscription_id");
      const data: WebhookDeliveryView[] = rows.map((r) => ({
        id: r.id,
        source: r.source_id,
        provider: r.provider,
        status: r.status,
        eventId: r.event_id,
        event: r.event_type,
        verified: r.verified,
        failure: r.failure,
        runs: r.run_ids,
        subscription: r.subscription_id ?? null,
        receivedAt: r.received_at.toISOString(),
      }));
      return { data };
    },
  );
}
