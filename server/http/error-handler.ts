import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
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
      return send(reply, error.status, error.code, error.status >= 500 && !error.expose ? "internal error" : error.message, error.field);
    }
    if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE" && request.routeOptions.url?.startsWith("/api/v1/webhooks/")) {
      return send(reply, 413, "WEBHOOK_BODY_TOO_LARGE", `webhook body is too large; a delivery is limited to ${request.routeOptions.bodyLimit} bytes`);
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
  app.setNotFoundHandler(answerNoRoute);
}

/** fastify's `routerOptions.maxParamLength` (server/app.ts). */
export const MAX_PATH_PARAMETER_LENGTH = 500;

/**
 * No route for this URL: 404, or 414 when a segment is longer than a path parameter may be (the
 * router then matched no parameter route, and a catch-all like the dashboard's may have caught it).
 */
export function answerNoRoute(request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split("?")[0];
  if (path.split("/").some((segment) => segment.length > MAX_PATH_PARAMETER_LENGTH)) void send(reply, 414, "PATH_PARAMETER_TOO_LONG", "a path parameter of the URL is too long");
  else void send(reply, 404, "NOT_FOUND", `no route ${request.method} ${path}`);
}

/**
 * Errors fastify's router raises before any route or hook runs (a malformed %-escape in the path, a
 * path parameter over `maxParamLength`): answered in `ApiErrorBody` too. Passed as `frameworkErrors`.
 */
export function frameworkErrorHandler(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === "FST_ERR_BAD_URL") void send(reply, 400, "BAD_URL", "the URL is not valid: it has a malformed %-escape");
  else if (error.code === "FST_ERR_MAX_PARAM_LENGTH") void send(reply, 414, "PATH_PARAMETER_TOO_LONG", "a path parameter of the URL is too long");
  else void send(reply, typeof error.statusCode === "number" && error.statusCode < 500 ? error.statusCode : 400, error.code ?? "BAD_REQUEST", "the request could not be routed");
}

/**
 * Requests Node's HTTP parser refuses (bad header bytes, a wrong Content-Length, headers too large, a
 * timeout) never reach fastify: answer them in `ApiErrorBody` and close the socket, as Node does.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const [status, code, message] =
    error.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "REQUEST_TIMEOUT", "the request took too long to arrive"]
      : error.code === "HPE_HEADER_OVERFLOW"
        ? [431, "HEADERS_TOO_LARGE", "the request headers are too large"]
        : [400, "BAD_HTTP_REQUEST", "the request is not valid HTTP/1.1"];
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(error);
}
