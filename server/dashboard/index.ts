// The web dashboard: sign-in and sessions, and the built UI. Its data comes from the same API as the CLI's.
import fastifyCookie from "@fastify/cookie";
import type { FastifyInstance } from "fastify";
import type { Engine } from "../engine/context.ts";
import { dashboardAuthRoutes, type DashboardAuthOptions } from "./auth-routes.ts";
import { serveDashboardUi } from "./static-ui.ts";

export { DEFAULT_SESSION_TTL_MS, SESSION_COOKIE, CSRF_HEADER } from "./sessions.ts";
export { DASHBOARD_DIST } from "./static-ui.ts";

/** Cookies are parsed before the auth hook runs (it reads the session cookie): register this first. */
export async function installCookies(app: FastifyInstance): Promise<void> {
  await app.register(fastifyCookie);
}

export async function dashboardRoutes(app: FastifyInstance, engine: Engine, options: DashboardAuthOptions & { dist?: string }): Promise<void> {
  await dashboardAuthRoutes(app, engine, options);
  await serveDashboardUi(app, options.dist);
}
