import Fastify, { type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { DeliveryLog } from "./delivery-log.ts";
import type { EventHandler } from "./handle-event.ts";

export const WEBHOOK_PATH = "/api/github/webhooks";

export interface WebhookServerOptions {
  verify(rawBody: string, signature: string): Promise<boolean>;
  deliveries: DeliveryLog;
  handle: EventHandler;
  log: Logger;
}

export interface WebhookServer {
  app: FastifyInstance;
  /** Resolves when every accepted delivery has been handled (builds included). */
  idle(): Promise<void>;
}

/**
 * `POST /api/github/webhooks`: the signature is checked on the raw body before anything parses it;
 * a first-seen delivery is acknowledged with 202 and handled in the background (GitHub gives a
 * webhook 10 s), a redelivery of one being handled or handled successfully with 200 and nothing
 * else. A delivery whose handling failed is not recorded, so its redelivery is handled again.
 */
export function createWebhookServer(options: WebhookServerOptions): WebhookServer {
  const { log } = options;
  const app = Fastify({ loggerInstance: log.child({ component: "webhooks" }), bodyLimit: 25 * 1024 * 1024, disableRequestLogging: true }) as unknown as FastifyInstance;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => done(null, body));
  const pending = new Set<Promise<void>>();
  let received = 0;

  app.get("/healthz", async () => ({ ok: true }));
  app.post(WEBHOOK_PATH, async (request, reply) => {
    const order = ++received;
    const header = (name: string) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const deliveryId = header("x-github-delivery");
    const event = header("x-github-event");
    const signature = header("x-hub-signature-256");
    const raw = typeof request.body === "string" ? request.body : "";
    if (!signature || !(await options.verify(raw, signature))) {
      log.warn({ delivery: deliveryId, event }, signature ? "webhook refused: signature does not match" : "webhook refused: no X-Hub-Signature-256");
      return reply.code(401).send({ error: { code: "BAD_SIGNATURE", message: "X-Hub-Signature-256 is missing or does not match the webhook secret" } });
    }
    if (!deliveryId || !event) return reply.code(400).send({ error: { code: "BAD_REQUEST", message: "X-GitHub-Delivery and X-GitHub-Event are required" } });
    if (!String(request.headers["content-type"] ?? "").startsWith("application/json")) {
      return reply.code(415).send({ error: { code: "UNSUPPORTED_MEDIA_TYPE", message: "set the webhook's content type to application/json" } });
    }
    let payload: unknown;
    try {
      payload = JSON.parse(raw);
    } catch {
      return reply.code(400).send({ error: { code: "BAD_REQUEST", message: "the body is not JSON" } });
    }
    if (!options.deliveries.claim(deliveryId)) {
      log.info({ delivery: deliveryId, event }, "redelivery ignored: handled already or being handled");
      return reply.code(200).send({ ok: true, duplicate: true });
    }
    const eventLog = log.child({ delivery: deliveryId, event });
    const handling = options
      .handle(event, payload, { deliveryId, order, log: eventLog })
      .then(
        () => options.deliveries.handled(deliveryId),
        (thrown: unknown) => {
          // Not recorded: GitHub's redelivery of this id is handled again.
          options.deliveries.failed(deliveryId);
          eventLog.error({ err: thrown instanceof Error ? thrown.message : String(thrown) }, "handling the webhook failed; a redelivery will be handled again");
        },
      )
      .catch((thrown: unknown) => eventLog.error({ err: thrown instanceof Error ? thrown.message : String(thrown) }, "recording the delivery failed"))
      .finally(() => pending.delete(handling));
    pending.add(handling);
    return reply.code(202).send({ ok: true });
  });

  return {
    app,
    async idle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
