import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { Webhooks } from "@octokit/webhooks";
import Stripe from "stripe";
import type { WebhookTrigger } from "../../schemas/index.ts";

/** Stripe's own default: a signature older than this many seconds is refused (a replay). */
export const STRIPE_TOLERANCE_S = 300;

export type Headers = Record<string, string | string[] | undefined>;

/** A delivery whose signature checked out, with its body parsed only then. */
export interface VerifiedDelivery {
  /** The provider's event id (Stripe `evt_…`), delivery id (GitHub `X-GitHub-Delivery`) or the http source's id. */
  eventId: string;
  /** The event type tasks subscribe to: `customer.subscription.updated`, `issues.opened`, … */
  event: string;
  /** Every name the delivery matches (GitHub: `issues` and `issues.opened`). */
  matches: string[];
  /** What the task runs with. */
  payload: unknown;
}

/** Why a delivery was refused; `code` becomes the API error code, `message` is recorded with the delivery. */
export class DeliveryRefused extends Error {
  constructor(
    readonly code: "WEBHOOK_SIGNATURE_MISSING" | "WEBHOOK_SIGNATURE_INVALID" | "WEBHOOK_SIGNATURE_STALE" | "WEBHOOK_BODY_INVALID",
    message: string,
  ) {
    super(message);
    this.name = "DeliveryRefused";
  }
}

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw new DeliveryRefused("WEBHOOK_BODY_INVALID", "the signature is valid but the body is not JSON");
  }
}

/**
 * Checks the delivery's signature over the raw bytes with the provider's own library, and parses the
 * body only after that (octokit/webhooks.js `verify-and-receive` order). Nothing here logs: errors
 * of the providers' libraries carry the header and body, and the secret is in scope.
 */
export async function verifyDelivery(source: WebhookTrigger, secret: string, raw: Buffer, headers: Headers, nowMs: number): Promise<VerifiedDelivery> {
  switch (source.provider) {
    case "stripe":
      return verifyStripe(secret, raw, headers, nowMs);
    case "github":
      return await verifyGithub(secret, raw, headers);
    case "http":
      return verifyHttp(source, secret, raw, headers);
  }
}

function verifyStripe(secret: string, raw: Buffer, headers: Headers, nowMs: number): VerifiedDelivery {
  const signature = header(headers, "stripe-signature");
  if (!signature) throw new DeliveryRefused("WEBHOOK_SIGNATURE_MISSING", "no Stripe-Signature header");
  let event: Stripe.Event;
  try {
    event = Stripe.webhooks.constructEvent(raw, signature, secret, STRIPE_TOLERANCE_S, undefined, nowMs);
  } catch (error) {
    if (error instanceof SyntaxError) throw new DeliveryRefused("WEBHOOK_BODY_INVALID", "the signature is valid but the body is not JSON");
    const message = (error as Error).message;
    if (/tolerance/i.test(message)) throw new DeliveryRefused("WEBHOOK_SIGNATURE_STALE", `the Stripe-Signature timestamp is more than ${STRIPE_TOLERANCE_S} s old (a stale or replayed delivery)`);
    if (/Unable to extract timestamp and signatures/i.test(message)) throw new DeliveryRefused("WEBHOOK_SIGNATURE_INVALID", "the Stripe-Signature header is malformed (no t= and v1= parts)");
    throw new DeliveryRefused("WEBHOOK_SIGNATURE_INVALID", "the Stripe-Signature does not match the body (wrong signing secret, or the body was changed)");
  }
  if (typeof event?.id !== "string" || typeof event?.type !== "string") throw new DeliveryRefused("WEBHOOK_BODY_INVALID", "the body is not a Stripe event (no id or type)");
  return { eventId: event.id, event: event.type, matches: [event.type], payload: event };
}

async function verifyGithub(secret: string, raw: Buffer, headers: Headers): Promise<VerifiedDelivery> {
  const signature = header(headers, "x-hub-signature-256");
  if (!signature) throw new DeliveryRefused("WEBHOOK_SIGNATURE_MISSING", "no X-Hub-Signature-256 header");
  const text = raw.toString("utf8");
  let ok = false;
  try {
    ok = await new Webhooks({ secret }).verify(text, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new DeliveryRefused("WEBHOOK_SIGNATURE_INVALID", "the X-Hub-Signature-256 does not match the body (wrong webhook secret, or the body was changed)");
  const deliveryId = header(headers, "x-github-delivery");
  const name = header(headers, "x-github-event");
  if (!deliveryId || !name) throw new DeliveryRefused("WEBHOOK_BODY_INVALID", "a GitHub delivery needs X-GitHub-Delivery and X-GitHub-Event headers");
  const payload = parseJson(raw) as { action?: unknown };
  const action = payload && typeof payload === "object" && typeof payload.action === "string" ? payload.action : null;
  const event = action ? `${name}.${action}` : name;
  return { eventId: deliveryId, event, matches: action ? [name, event] : [name], payload: { id: deliveryId, name, payload } };
}

function verifyHttp(source: WebhookTrigger, secret: string, raw: Buffer, headers: Headers): VerifiedDelivery {
  const http = source.http!;
  const given = header(headers, http.verify.header);
  if (!given) throw new DeliveryRefused("WEBHOOK_SIGNATURE_MISSING", `no ${http.verify.header} header`);
  const digest = createHmac(http.verify.algorithm, secret).update(raw).digest();
  const text = given.startsWith(http.verify.prefix) ? given.slice(http.verify.prefix.length).trim() : null;
  const presented = text === null ? Buffer.alloc(0) : Buffer.from(text, http.verify.encoding);
  if (presented.length !== digest.length || !timingSafeEqual(presented, digest)) {
    throw new DeliveryRefused("WEBHOOK_SIGNATURE_INVALID", `the ${http.verify.header} header does not match the body's HMAC-${http.verify.algorithm.toUpperCase()} (wrong secret, or the body was changed)`);
  }
  const body = parseJson(raw);
  const eventId = (http.idHeader && header(headers, http.idHeader)) || `sha256:${createHash("sha256").update(raw).digest("hex")}`;
  const fromBody = body && typeof body === "object" && typeof (body as { type?: unknown }).type === "string" ? (body as { type: string }).type : null;
  const event = (http.eventHeader && header(headers, http.eventHeader)) || fromBody || "webhook";
  return { eventId, event, matches: [event], payload: { id: eventId, event, body } };
}
