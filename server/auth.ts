import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Knex } from "knex";
import type { FastifyRequest } from "fastify";
import { forbidden, unauthorized } from "./errors.ts";
import { principalForDeployToken } from "./oidc/deploy-tokens.ts";

export type AuthKind = "admin" | "env" | "runner" | "none";

export interface EnvironmentPrincipal {
  kind: "env";
  environmentId: string;
  environment: string;
  projectId: string;
  project: string;
  archived: boolean;
}
export type Principal = { kind: "admin" } | { kind: "runner" } | EnvironmentPrincipal | { kind: "none" };

export function sha256(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

export function randomToken(bytes = 24): string {
  return randomBytes(bytes).toString("base64url");
}

/** `sk_<env>_<random>`; `preview/pr-3` becomes `preview-pr-3` so the key stays one token. */
export function newApiKey(environmentSlug: string): string {
  return `sk_${environmentSlug.replace(/[^a-zA-Z0-9-]/g, "-")}_${randomToken(24)}`;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(sha256(given), "hex");
  const b = Buffer.from(sha256(expected), "hex");
  return timingSafeEqual(a, b);
}

function bearer(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  return match ? match[1].trim() : null;
}

export interface AuthOptions {
  db: Knex;
  adminToken: string;
  runnerToken: string;
}

/** Who is calling, and whether that kind of caller may use the route. */
export async function authenticate(request: FastifyRequest, required: AuthKind, options: AuthOptions): Promise<Principal> {
  if (required === "none") return { kind: "none" };
  const token = bearer(request);
  if (!token) throw unauthorized("missing API key: send Authorization: Bearer <key>");

  let principal: Principal | null = null;
  if (sameSecret(token, options.adminToken)) principal = { kind: "admin" };
  else if (sameSecret(token, options.runnerToken)) principal = { kind: "runner" };
  else if (token.startsWith("sk_")) principal = await environmentForKey(options.db, token);
  // Short-lived CI deploy tokens (server/oidc): scoped to one environment and the deploy routes.
  else if (token.startsWith("dt_")) principal = await principalForDeployToken(options.db, token, request);
  if (!principal) throw unauthorized("invalid API key");

  if (principal.kind !== required) {
    const wanted = required === "env" ? "an environment API key" : required === "admin" ? "the admin token" : "the runner token";
    throw forbidden(`this route needs ${wanted}`);
  }
  return principal;
}

async function environmentForKey(db: Knex, key: string): Promise<EnvironmentPrincipal | null> {
  const row = await db("api_keys as k")
    .join("environments as e", "e.id", "k.environment_id")
    .join("projects as p", "p.id", "e.project_id")
    .where("k.key_hash", sha256(key))
    .whereNull("k.revoked_at")
    .first("e.id as environment_id", "e.slug as environment", "p.id as project_id", "p.slug as project", "e.archived_at");
  if (!row) return null;
  return {
    kind: "env",
    environmentId: row.environment_id,
    environment: row.environment,
    projectId: row.project_id,
    project: row.project,
    archived: row.archived_at !== null,
  };
}

/** A resource of another environment than the caller's key. */
export function assertSameEnvironment(principal: EnvironmentPrincipal, environmentId: string, what: string): void {
  if (principal.environmentId !== environmentId) throw forbidden(`${what} belongs to another environment than this API key (${principal.project}/${principal.environment})`);
}
