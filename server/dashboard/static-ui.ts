import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";
import { answerNoRoute } from "../http/error-handler.ts";

/** Where `npm run build` (scripts/build-dist.mjs) writes the dashboard: never committed. */
export const DASHBOARD_DIST = resolve(import.meta.dirname, "../../dist/dashboard");

// The page loads only its own script and style and talks only to this origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function headers(reply: FastifyReply): FastifyReply {
  return reply.header("content-security-policy", CSP).header("x-content-type-options", "nosniff").header("referrer-policy", "no-referrer").header("cache-control", "no-cache");
}

/**
 * The built UI under `/`: `/assets/*` are its files (through @fastify/static's `sendFile`, which
 * keeps paths inside the root), and every other GET outside `/api/` is the single page, which
 * routes itself. Both need no auth: the page holds no data, and everything it shows comes from
 * the API under the session's own rules.
 */
export async function serveDashboardUi(app: FastifyInstance, dist = DASHBOARD_DIST): Promise<void> {
  await app.register(fastifyStatic, { root: dist, serve: false });
  const built = () => existsSync(join(dist, "index.html"));
  const page = (reply: FastifyReply) => {
    if (!built()) return reply.status(503).type("text/plain").send("The dashboard is not built: run `npm run build` in the Stasis checkout.\n");
    return headers(reply).sendFile("index.html");
  };
  const none = { auth: "none" as const, unlisted: true };
  app.get("/assets/*", { config: none }, async (request, reply) => headers(reply).sendFile(`assets/${(request.params as { "*": string })["*"]}`));
  app.get("/", { config: none }, async (_request, reply) => page(reply));
  app.get("/*", { config: none }, async (request, reply) => {
    if (request.url.startsWith("/api/") || request.url === "/api") return answerNoRoute(request, reply);
    return page(reply);
  });
}
