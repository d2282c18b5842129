import { createHash } from "node:crypto";
import type { Knex } from "knex";
import { StasisError, conflict, notFound } from "../errors.ts";
import { systemClock, type Engine } from "../engine/context.ts";
import { newId } from "../engine/ids.ts";
import { triggerRun } from "../engine/trigger-run.ts";
import { findUnstorableInput } from "../http/storable-input.ts";
import { effectiveVariables } from "../secrets/envvar-store.ts";
import { DeliveryRefused, verifyDelivery, type Headers, type VerifiedDelivery } from "./verify-delivery.ts";
import { resolveWebhookTarget, sourcesOf, type WebhookSource, type WebhookTarget } from "./sources.ts";
import { subscriptionForDelivery } from "./subscriptions.ts";
import type { WebhookSubscriptionOrigin } from "../../schemas/index.ts";

export interface DeliveryResult {
  delivery: string;
  id: string;
  duplicate: boolean;
  runs: string[];
}

/** A refused delivery as answered: the code and message the sender (and `webhooks deliveries`) see. */
export class DeliveryError extends StasisError {}

/** Idempotency keys are ≤ 256 characters: a long http delivery id is hashed. */
function keyPart(eventId: string): string {
  return eventId.length <= 200 ? eventId : `sha256:${createHash("sha256").update(eventId).digest("hex")}`;
}

async function recordRefusal(db: Knex, target: WebhookTarget, sourceId: string, provider: string, failure: string, subscriptionId: string | null = null): Promise<void> {
  await db("webhook_deliveries").insert({ id: newId("whd"), environment_id: target.environmentId, source_id: sourceId, provider, status: "REJECTED", verified: false, failure, subscription_id: subscriptionId });
}

/**
 * One POST to a webhook URL: find the source in the environment's promoted version, read its signing
 * secret from the environment's variables, verify the raw body, then — in one transaction — record
 * the delivery (the partial unique index on its event id turns a redelivery into a DUPLICATE row that
 * starts nothing) and trigger one run per task listening to the event, keyed by the event id.
 * Nothing waits on the runs: the answer goes out as soon as they are queued.
 *
 * Through a subscription's URL (`…/<source>/<subscription id>`), the secret is the one Stasis generated
 * for that subscription's hook, and the payload says which subscription (integration, externalId,
 * repository) the event came through, so the task can act with that user's connection.
 */
export async function receiveDelivery(engine: Engine, params: { project: string; environment: string; sourceId: string; subscriptionId?: string }, raw: Buffer, headers: Headers): Promise<DeliveryResult> {
  const target = await resolveWebhookTarget(engine.db, params.project, params.environment);
  if (target.archived) throw conflict(`environment ${target.environment} of project ${target.project} is archived`, "ENVIRONMENT_ARCHIVED");
  const source = sourcesOf(target.manifest).get(params.sourceId);
  if (!source) {
    const where = target.version ? `version ${target.version}` : "no version (nothing is promoted)";
    throw notFound(`webhook source ${params.sourceId} is not declared by ${target.project}/${target.environment}'s promoted ${where}`, "sourceId");
  }
  const provider = source.trigger.provider;
  const subscriptionId = params.subscriptionId ?? null;
  let origin: WebhookSubscriptionOrigin | null = null;
  let secret: string | undefined;
  if (subscriptionId !== null) {
    const subscription = provider === "github" && engine.keyring ? await subscriptionForDelivery(engine.db, engine.keyring, target, params.sourceId, subscriptionId) : null;
    if (!subscription) {
      const message = `webhook ${params.sourceId}: there is no subscription ${subscriptionId} in ${target.project}/${target.environment} (it was removed, or never made here); nothing started`;
      await recordRefusal(engine.db, target, params.sourceId, provider, message, subscriptionId);
      throw new DeliveryError("WEBHOOK_SUBSCRIPTION_NOT_FOUND", 404, message);
    }
    ({ secret, origin } = subscription);
  }
  const secretEnv = source.trigger.secretEnv;
  if (subscriptionId === null) secret = engine.keyring ? (await effectiveVariables(engine.db, engine.keyring, target.projectId, target.environment))[secretEnv] : undefined;
  if (!secret) {
    const message = `the signing secret ${secretEnv} is not set in ${target.project}/${target.environment}: stasis env set ${secretEnv}=… --env ${target.environment}`;
    await recordRefusal(engine.db, target, params.sourceId, provider, message);
    throw new DeliveryError("WEBHOOK_SECRET_MISSING", 503, message, { expose: true });
  }
  let verified: VerifiedDelivery;
  try {
    verified = await verifyDelivery(source.trigger, secret, raw, headers, (engine.clock ?? systemClock).now().getTime());
    const unstorable = findUnstorableInput(verified.payload);
    if (unstorable) throw new DeliveryRefused("WEBHOOK_BODY_INVALID", `body.${unstorable.path.join(".")}: ${unstorable.message}`);
  } catch (error) {
    if (!(error instanceof DeliveryRefused)) throw error;
    await recordRefusal(engine.db, target, params.sourceId, provider, subscriptionId ? `subscription ${subscriptionId}: ${error.message}` : error.message, subscriptionId);
    throw new DeliveryError(error.code, error.code === "WEBHOOK_BODY_INVALID" ? 400 : 401, `webhook ${params.sourceId}: ${error.message}`);
  }
  if (origin) verified = { ...verified, payload: { ...(verified.payload as object), subscription: origin } };
  return await accept(engine, target, params.sourceId, source, verified, subscriptionId);
}

async function accept(engine: Engine, target: WebhookTarget, sourceId: string, source: WebhookSource, verified: VerifiedDelivery, subscriptionId: string | null): Promise<DeliveryResult> {
  return await engine.db.transaction(async (trx) => {
    const id = newId("whd");
    const base = { environment_id: target.environmentId, source_id: sourceId, provider: source.trigger.provider, event_id: verified.eventId, event_type: verified.event, verified: true, subscription_id: subscriptionId };
    const inserted = await trx("webhook_deliveries")
      .insert({ id, ...base, status: "ACCEPTED", payload: JSON.stringify(verified.payload) })
      .onConflict(trx.raw("(environment_id, source_id, event_id) WHERE status = 'ACCEPTED'"))
      .ignore()
      .returning("id");
    if (inserted.length === 0) {
      const original = await trx("webhook_deliveries").where({ environment_id: target.environmentId, source_id: sourceId, event_id: verified.eventId, status: "ACCEPTED" }).first("id", "run_ids");
      await trx("webhook_deliveries").insert({ id, ...base, status: "DUPLICATE", failure: `redelivery of ${original.id}: nothing started` });
      return { delivery: id, id: verified.eventId, duplicate: true, runs: original.run_ids as string[] };
    }
    const runs: string[] = [];
    const env = { environmentId: target.environmentId, environment: target.environment, archived: target.archived };
    for (const task of source.tasks) {
      if (!task.events.some((e) => e === "*" || verified.matches.includes(e))) continue;
      const run = await triggerRun(
        trx,
        env,
        { taskId: task.id, payload: verified.payload, options: { idempotencyKey: `webhook/${sourceId}/${keyPart(verified.eventId)}`, tags: [`webhook:${sourceId}`] } },
        engine.config.pendingVersionTtlMs,
      );
      runs.push(run.id);
    }
    await trx("webhook_deliveries").where({ id }).update({ run_ids: runs });
    return { delivery: id, id: verified.eventId, duplicate: false, runs };
  });
}
