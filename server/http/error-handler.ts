import type { FastifyError, FastifyInstance } from "fastify";
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from "fastify-type-provider-zod";
import { MAX_PAYLOAD_BYTES } from "../../schemas/index.ts";
import { StasisError, toError } from "../errors.ts";

function send(reply: import("fastify").FastifyReply, status: number, code: string, message: string, field?: string) {
  return reply.status(status).send({ error: { code, message, ...(field ? { field } : {}) } });
}

/**
 * One place that turns errors into `ApiErrorBody`: validation names the field, our own errors keep
 * their code and status, fastify's 4xx keep their message, and a 5xx says nothing about internals.
 */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((raw: unknown, request, reply) => {
    const error = toError(raw) as FastifyError & { validationContext?: string };
    if (hasZodFastifySchemaValidationErrors(error)) {
      const first = error.validation[0];
      const field = first.instancePath.replace(/^\//, "").replace(/\//g, ".") || (error.validationContext ?? "body");
      const where = error.validationContext ?? "body";
      const message = `invalid ${where}: ${field}: ${first.message}` + (error.validation.length > 1 ? ` (and ${error.validation.length - 1} more)` : "");
      return send(reply, 400, "VALIDATION_FAILED", message, field);
    }
    if (error instanceof StasisError) {
      if (error.status >= 500) request.log.error({ err: error.cause ?? error }, error.message);
      return send(reply, error.status, error.code, error.status >= 500 ? "internal error" : error.message, error.field);
    }
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return send(reply, 413, "PAYLOAD_TOO_LARGE", `request body is too large; payloads are limited to ${MAX_PAYLOAD_BYTES} bytes (3 MiB) of JSON`);
    }
    const status = typeof error.statusCode === "number" ? error.statusCode : 500;
    if (status < 500 && !isResponseSerializationError(error)) {
      return send(reply, status, error.code ?? "BAD_REQUEST", error.message);
    }
    request.log.error({ err: error }, "request failed");
    return send(reply, 500, "INTERNAL", "internal error");
  });
  app.setNotFoundHandler((request, reply) => send(reply, 404, "NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`));
}
