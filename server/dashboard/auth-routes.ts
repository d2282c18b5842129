import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { ApiErrorBody, LoginLinkBody, LoginTokenRequest, LoginTokenResponse, SessionView, SignInRequest } from "../../schemas/index.ts";
import { sha256 } from "../auth.ts";
import type { Engine } from "../engine/context.ts";
import { StasisError, unauthorized } from "../errors.ts";
import { consumeLoginToken, createLoginToken, createSession, CSRF_HEADER, deleteSession, findSession, SESSION_COOKIE, type SessionGrant } from "./sessions.ts";

const errors = { 400: ApiErrorBody, 401: ApiErrorBody, 403: ApiErrorBody, 404: ApiErrorBody };

export interface DashboardAuthOptions {
  adminToken: string;
  sessionTtlMs: number;
  publicUrl: string;
}

type CookieReply = FastifyReply & { setCookie(name: string, value: string, options: Record<string, unknown>): FastifyReply; clearCookie(name: string, options: Record<string, unknown>): FastifyReply };
const cookieOf = (request: FastifyRequest) => (request as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies?.[SESSION_COOKIE];

function setSessionCookie(request: FastifyRequest, reply: FastifyReply, token: string, expiresAt: Date): void {
  // httpOnly: page scripts never see it; SameSite=Strict: no other site's page sends it; Secure over https.
  (reply as CookieReply).setCookie(SESSION_COOKIE, token, { path: "/", httpOnly: true, sameSite: "strict", secure: request.protocol === "https", expires: expiresAt });
}

async function sessionView(engine: Engine, grant: SessionGrant, csrfToken: string, expiresAt: Date): Promise<z.infer<typeof SessionView>> {
  if (grant.kind === "admin") return { kind: "admin", project: null, environment: null, csrfToken, expiresAt: expiresAt.toISOString() };
  const row = await engine.db("environments as e").join("projects as p", "p.id", "e.project_id").where("e.id", grant.environmentId).first("e.slug as environment", "p.slug as project");
  return { kind: "env", project: row.project, environment: row.environment, csrfToken, expiresAt: expiresAt.toISOString() };
}

/** The credential a person pastes: the admin token, or an environment API key that is not revoked. */
async function grantFor(engine: Engine, adminToken: string, credential: string): Promise<SessionGrant | null> {
  if (sha256(credential) === sha256(adminToken)) return { kind: "admin" };
  if (!credential.startsWith("sk_")) return null;
  const key = await engine.db("api_keys").where({ key_hash: sha256(credential) }).whereNull("revoked_at").first("id", "environment_id");
  return key ? { kind: "env", environmentId: key.environment_id, apiKeyId: key.id } : null;
}

/**
 * Sign in (a key or the admin token → a session cookie), one-time login links (`stasis dev`),
 * who the session is, and sign out. These are the only routes that read the session themselves;
 * every other route gets the session's principal from the auth hook.
 */
export async function dashboardAuthRoutes(root: FastifyInstance, engine: Engine, options: DashboardAuthOptions): Promise<void> {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const none = { auth: "none" as const };

  app.post("/api/v1/dashboard/sign-in", { config: none, schema: { body: SignInRequest, response: { 200: SessionView, ...errors } } }, async (request, reply) => {
    const grant = await grantFor(engine, options.adminToken, request.body.credential.trim());
    if (!grant) throw unauthorized("that is neither an API key of an environment (sk_…) that is still valid nor the admin token");
    const session = await createSession(engine.db, grant, options.sessionTtlMs);
    setSessionCookie(request, reply, session.token, session.expiresAt);
    return await sessionView(engine, grant, session.csrfToken, session.expiresAt);
  });

  // The link `stasis dev` prints opens the page /login?token=…, which posts the token here: a link
  // scanner or preview that only GETs the link cannot use it up. One-time (compare-and-set), 15 min.
  app.post("/api/v1/dashboard/login", { config: none, schema: { body: LoginLinkBody, response: { 200: SessionView, ...errors } } }, async (request, reply) => {
    const grant = await consumeLoginToken(engine.db, request.body.token);
    if (!grant) throw new StasisError("LOGIN_LINK_INVALID", 401, "that login link was already used or has expired: start `stasis dev` again for a new one, or sign in with a key");
    const session = await createSession(engine.db, grant, options.sessionTtlMs);
    setSessionCookie(request, reply, session.token, session.expiresAt);
    return await sessionView(engine, grant, session.csrfToken, session.expiresAt);
  });

  app.get("/api/v1/dashboard/session", { config: none, schema: { response: { 200: SessionView, ...errors } } }, async (request) => {
    const token = cookieOf(request);
    const session = token ? await findSession(engine.db, token) : null;
    if (!session) throw new StasisError("SESSION_INVALID", 401, "not signed in");
    if (session.expired) throw new StasisError("SESSION_EXPIRED", 401, "your dashboard session expired: sign in again");
    const row = await engine.db("dashboard_sessions").where({ token_hash: sha256(token!) }).first("expires_at");
    const grant: SessionGrant = session.kind === "admin" ? { kind: "admin" } : { kind: "env", environmentId: session.environmentId! };
    return await sessionView(engine, grant, session.csrfToken, row.expires_at);
  });

  app.post("/api/v1/dashboard/sign-out", { config: none, schema: { response: { 204: z.null(), ...errors } } }, async (request, reply) => {
    const token = cookieOf(request);
    const session = token ? await findSession(engine.db, token) : null;
    if (session) {
      if (request.headers[CSRF_HEADER] !== session.csrfToken) throw new StasisError("CSRF_TOKEN_INVALID", 403, `signing out needs the session's CSRF token in ${CSRF_HEADER}`);
      await deleteSession(engine.db, token!);
    }
    (reply as CookieReply).clearCookie(SESSION_COOKIE, { path: "/" });
    return reply.status(204).send(null);
  });

  app.post(
    "/api/v1/admin/dashboard/login-links",
    { config: { auth: "admin" as const }, schema: { body: LoginTokenRequest.nullish(), response: { 200: LoginTokenResponse, ...errors } } },
    async (request) => {
      let grant: SessionGrant = { kind: "admin" };
      if (request.body) {
        const env = await engine.db("environments as e").join("projects as p", "p.id", "e.project_id").where({ "p.slug": request.body.project, "e.slug": request.body.environment }).first("e.id");
        if (!env) throw new StasisError("NOT_FOUND", 404, `environment ${request.body.project}/${request.body.environment} does not exist`, { field: "environment" });
        grant = { kind: "env", environmentId: env.id };
      }
      const { token, expiresAt } = await createLoginToken(engine.db, grant);
      return { token, url: `${options.publicUrl}/login?token=${token}`, expiresAt: expiresAt.toISOString() };
    },
  );
}
