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

async function recordRefusal(db: Knex, target: WebhookTarget, sourceId: string, provider: string, failure: string): Promise<void> {
  await db("webhook_deliveries").insert({ id: newId("whd"), environment_id: target.environmentId, source_id: sourceId, provider, status: "REJECTED", verified: false, failure });
}

/**
 * One POST to a webhook URL: find the source in the environment's promoted version, read its signing
 * secret from the environment's variables, verify the raw body, then — in one transaction — record
 * the delivery (the partial unique index on its event id turns a redelivery into a DUPLICATE row that
 * starts nothing) and trigger one run per task listening to the event, keyed by the event id.
 * Nothing waits on the runs: the answer goes out as soon as they are queued.
 */
export async function receiveDelivery(engine: Engine, params: { project: string; environment: string; sourceId: string }, raw: Buffer, headers: Headers): Promise<DeliveryResult> {
  const target = await resolveWebhookTarget(engine.db, params.project, params.environment);
  if (target.archived) throw conflict(`environment ${target.environment} of project ${target.project} is archived`, "ENVIRONMENT_ARCHIVED");
  const source = sourcesOf(target.manifest).get(params.sourceId);
  if (!source) {
    const where = target.version ? `version ${target.version}` : "no version (nothing is promoted)";
    throw notFound(`webhook source ${params.sourceId} is not declared by ${target.project}/${target.environment}'s promoted ${where}`, "sourceId");
  }
  const provider = source.trigger.provider;
  const secretEnv = source.trigger.secretEnv;
  const secret = engine.keyring ? (await effectiveVariables(engine.db, engine.keyring, target.projectId, target.environment))[secretEnv] : undefined;
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
    await recordRefusal(engine.db, target, params.sourceId, provider, error.message);
    throw new DeliveryError(error.code, error.code === "WEBHOOK_BODY_INVALID" ? 400 : 401, `webhook ${params.sourceId}: ${error.message}`);
  }
  return await accept(engine, target, params.sourceId, source, verified);
}

async function accept(engine: Engine, target: WebhookTarget, sourceId: string, source: WebhookSource, verified: VerifiedDelivery): Promise<DeliveryResult> {
  return await engine.db.transaction(async (trx) => {
    const id = newId("whd");
    const base = { environment_id: target.environmentId, source_id: sourceId, provider: source.trigger.provider, event_id: verified.eventId, event_type: verified.event, verified: true };
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
