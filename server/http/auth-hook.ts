import type { FastifyInstance, FastifyRequest } from "fastify";
import { authenticate, type AuthKind, type AuthOptions, type EnvironmentPrincipal, type Principal } from "../auth.ts";
import { StasisError } from "../errors.ts";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    auth?: AuthKind;
    /**
     * Left out of `StasisServer.routes` (what the fuzzer drives through app.inject): the dashboard's
     * files and its endless event stream, which have their own tests (test/server-dashboard-auth.test.ts).
     */
    unlisted?: boolean;
  }
}

/** Every route says who may call it (`config.auth`); a route that forgets is admin-only. */
export function installAuth(app: FastifyInstance, options: AuthOptions): void {
  app.decorateRequest("principal", null as never);
  app.addHook("onRequest", async (request) => {
    const required = request.routeOptions.config?.auth ?? (request.routeOptions.url ? "admin" : "none");
    request.principal = await authenticate(request, required, options);
  });
}

export function envOf(request: FastifyRequest): EnvironmentPrincipal {
  if (request.principal.kind !== "env") throw new StasisError("FORBIDDEN", 403, "this route needs an environment API key");
  return request.principal;
}
