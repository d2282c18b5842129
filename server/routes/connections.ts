import type { FastifyInstance, FastifyReply } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import {
  AddIntegrationRequest,
  ApiErrorBody,
  ConnectionListQuery,
  ConnectionListResponse,
  ConnectionParams,
  ConnectLinkResponse,
  CreateConnectLinkRequest,
  DeleteIntegrationResponse,
  GetTokenRequest,
  IntegrationListResponse,
  IntegrationParams,
  IntegrationView,
  RevokeConnectionResponse,
  RunnerConnectionTokenRequest,
  StartConnectRequest,
  StartConnectResponse,
  TokenResponse,
} from "../../schemas/index.ts";
import type { Engine } from "../engine/context.ts";
import { envOf } from "../http/auth-hook.ts";
import { lockLeasedRun } from "../engine/lease.ts";
import { StasisError } from "../errors.ts";
import { ConnectError, createConnectLink, finishConnect, openConnectLink, startConnect, submitApiKey } from "../connections/flow.ts";
import { addIntegration, listIntegrations, removeIntegration } from "../connections/integrations.ts";
import { apiKeyFormPage, errorPage, PAGE_CSP } from "../connections/pages.ts";
import { getToken, getTokenForRun, listConnections, revokeConnection } from "../connections/store.ts";
import { removeSubscriptionsOf } from "../webhooks/subscriptions.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody, 409: ApiErrorBody, 502: ApiErrorBody };
const env = { auth: "env" as const };
// Browser pages (HTML, redirects), not API: left out of the route list the fuzzer and docs enumerate, like the dashboard's own pages.
const page = { auth: "none" as const, unlisted: true };

function sendPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.status(status).header("content-security-policy", PAGE_CSP).header("cache-control", "no-store").header("referrer-policy", "no-referrer").type("text/html; charset=utf-8").send(html);
}

function sendConnectError(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof ConnectError) return sendPage(reply, error.status, errorPage(error.code, error.title, error.message));
  throw error;
}

/**
 * Integrations and connections of the caller's environment (API key, or the admin naming one), and
 * the browser side of a connect (the provider's callback, Connect links: no auth, the state or the
 * link token is the credential).
 */
export async function connectionRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  const typed = root.withTypeProvider<ZodTypeProvider>();
  const publicUrl = () => engine.config.publicUrl;

  typed.get("/api/v1/integrations", { config: env, schema: { response: { 200: IntegrationListResponse, ...errors } } }, async (request) => {
    const principal = envOf(request);
    return { project: principal.project, environment: principal.environment, data: await listIntegrations(engine.db, principal) };
  });

  typed.post("/api/v1/integrations", { config: env, schema: { body: AddIntegrationRequest, response: { 200: IntegrationView, ...errors } } }, async (request) => {
    return await addIntegration(engine.db, engine.keyring, envOf(request), request.body);
  });

  typed.delete("/api/v1/integrations/:slug", { config: env, schema: { params: IntegrationParams, response: { 200: DeleteIntegrationResponse, ...errors } } }, async (request) => {
    const principal = envOf(request);
    // Hooks of webhook subscriptions made with its connections go first, while their tokens still work.
    const ids = (await engine.db("connections as c").join("integrations as i", "i.id", "c.integration_id").where({ "i.environment_id": principal.environmentId, "i.slug": request.params.slug }).pluck("c.id")) as string[];
    const hooks = await removeSubscriptionsOf(engine.db, engine.keyring, principal, ids);
    return { ...(await removeIntegration(engine.db, principal, request.params.slug)), ...hooks };
  });

  typed.post("/api/v1/integrations/:slug/connect", { config: env, schema: { params: IntegrationParams, body: StartConnectRequest, response: { 200: StartConnectResponse, ...errors } } }, async (request) => {
    return { url: await startConnect(engine.db, engine.keyring, publicUrl(), envOf(request), request.params.slug, request.body.externalId, request.body.redirectTo) };
  });

  typed.get("/api/v1/connections", { config: env, schema: { querystring: ConnectionListQuery, response: { 200: ConnectionListResponse, ...errors } } }, async (request) => {
    const principal = envOf(request);
    return { project: principal.project, environment: principal.environment, data: await listConnections(engine.db, principal, request.query.integration) };
  });

  typed.delete("/api/v1/connections/:id", { config: env, schema: { params: ConnectionParams, response: { 200: RevokeConnectionResponse, ...errors } } }, async (request) => {
    const principal = envOf(request);
    // Hooks of webhook subscriptions made with the connection go first, while its token still works.
    const owned = await engine.db("connections as c").join("integrations as i", "i.id", "c.integration_id").where({ "c.id": request.params.id, "i.environment_id": principal.environmentId }).first("c.id");
    const hooks = await removeSubscriptionsOf(engine.db, engine.keyring, principal, owned ? [owned.id as string] : []);
    return { ...(await revokeConnection(engine.db, engine.keyring, principal, request.params.id)), ...hooks };
  });

  typed.post("/api/v1/connections/token", { config: env, schema: { body: GetTokenRequest, response: { 200: TokenResponse, ...errors } } }, async (request) => {
    return await getToken(engine.db, engine.keyring, envOf(request), request.body.integration, request.body.externalId);
  });

  typed.post("/api/v1/connect-links", { config: env, schema: { body: CreateConnectLinkRequest, response: { 200: ConnectLinkResponse, ...errors } } }, async (request) => {
    return await createConnectLink(engine.db, publicUrl(), envOf(request), request.body as Required<z.infer<typeof CreateConnectLinkRequest>>);
  });

  // The browser side: HTML pages, never JSON.
  await root.register(async (pages) => {
    pages.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 16 * 1024 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    const token = z.object({ token: z.string().regex(/^cl_[A-Za-z0-9_-]{20,64}$/) });
    const badLink = (reply: FastifyReply) => sendPage(reply, 404, errorPage("LINK_UNKNOWN", "Unknown Connect link", "This Connect link does not exist (mistyped, or it belongs to another server)."));

    pages.get("/api/v1/connect/callback", { config: page }, async (request, reply) => {
      try {
        return reply.redirect(await finishConnect(engine.db, engine.keyring, publicUrl(), new URL(request.url, "http://stasis.invalid")), 303);
      } catch (error) {
        return sendConnectError(reply, error);
      }
    });

    const linkParams = { params: z.object({ token: z.string().max(200) }) };
    pages.get("/api/v1/connect/links/:token", { config: page, schema: linkParams }, async (request, reply) => {
      const parsed = token.safeParse(request.params);
      if (!parsed.success) return badLink(reply);
      try {
        const next = await openConnectLink(engine.db, engine.keyring, publicUrl(), parsed.data.token);
        if ("redirect" in next) return reply.redirect(next.redirect, 303);
        return sendPage(reply, 200, apiKeyFormPage(next.form, `/api/v1/connect/links/${parsed.data.token}`));
      } catch (error) {
        return sendConnectError(reply, error);
      }
    });

    pages.post("/api/v1/connect/links/:token", { config: page, schema: linkParams }, async (request, reply) => {
      const parsed = token.safeParse(request.params);
      if (!parsed.success) return badLink(reply);
      const apiKey = (request.body as { apiKey?: unknown } | null)?.apiKey;
      try {
        return reply.redirect(await submitApiKey(engine.db, engine.keyring, parsed.data.token, typeof apiKey === "string" ? apiKey : ""), 303);
      } catch (error) {
        return sendConnectError(reply, error);
      }
    });
  });
}

/** A task's `connections.getToken`: the runner asks with the run's lease; the run's environment decides which connections it reaches. */
export async function runnerConnectionRoutes(root: FastifyInstance, engine: Engine): Promise<void> {
  root.withTypeProvider<ZodTypeProvider>().post(
    "/api/v1/runner/runs/:runId/connections/token",
    { config: { auth: "runner" as const }, schema: { params: z.object({ runId: z.string().min(1) }), body: RunnerConnectionTokenRequest, response: { 200: TokenResponse, ...errors } } },
    async (request) => {
      const run = await engine.db.transaction((trx) => lockLeasedRun(trx, request.params.runId, request.body.leaseId));
      const env = await engine.db("environments as e").join("projects as p", "p.id", "e.project_id").where("e.id", run.environment_id).first("e.id as environmentId", "e.slug as environment", "p.id as projectId", "p.slug as project");
      try {
        return await getTokenForRun(engine.db, engine.keyring, env, run.id, request.body.integration, request.body.externalId);
      } catch (error) {
        // A runner reads 404 as "the run is gone" and stops it: an unknown integration or connection is the task's bad input instead.
        if (error instanceof StasisError && error.status === 404) throw new StasisError(error.code, 400, error.message, { field: error.field });
        throw error;
      }
    },
  );
}
