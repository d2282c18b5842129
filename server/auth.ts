import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Knex } from "knex";
import type { FastifyRequest } from "fastify";
import { forbidden, unauthorized } from "./errors.ts";
import { principalForDeployToken } from "./oidc/deploy-tokens.ts";
import { CSRF_HEADER, findSession, SESSION_COOKIE } from "./dashboard/sessions.ts";
import { StasisError } from "./errors.ts";
import { coalesce, coalescerPerDatabase } from "./engine/coalesce.ts";
import { hotQuery } from "./db/prepared.ts";

/** The admin (token or session) acts in one environment on environment routes by naming it: `<project>/<environment>`. */
export const ENVIRONMENT_HEADER = "x-stasis-environment";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

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

const digestOf = (value: string): Buffer => createHash("sha256").update(value).digest();

function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digestOf(given), digestOf(expected));
}

/** The digest of a configured token (admin, runner), made once per token rather than on every request. */
const configuredDigests = new Map<string, Buffer>();
function isConfiguredToken(given: Buffer, configured: string): boolean {
  let expected = configuredDigests.get(configured);
  if (!expected) {
    if (configuredDigests.size > 64) configuredDigests.clear();
    configuredDigests.set(configured, (expected = digestOf(configured)));
  }
  return timingSafeEqual(given, expected);
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
  let principal: Principal | null = null;
  if (token) {
    const digest = digestOf(token);
    if (isConfiguredToken(digest, options.adminToken)) principal = { kind: "admin" };
    else if (isConfiguredToken(digest, options.runnerToken)) principal = { kind: "runner" };
    else if (token.startsWith("sk_")) principal = await keyLookupsOf(options.db).add(digest.toString("hex"));
    // Short-lived CI deploy tokens (server/oidc): scoped to one environment and the deploy routes.
    else if (token.startsWith("dt_")) principal = await principalForDeployToken(options.db, token, request);
    if (!principal) throw unauthorized("invalid API key");
  } else {
    principal = await sessionPrincipal(request, options.db);
    if (!principal) throw unauthorized("missing API key: send Authorization: Bearer <key>");
  }
  if (principal.kind === "admin" && required === "env") principal = (await environmentNamed(request, options.db)) ?? principal;

  if (principal.kind !== required) {
    const wanted = required === "env" ? `an environment API key (the admin names one with ${ENVIRONMENT_HEADER}: <project>/<environment>)` : required === "admin" ? "the admin token" : "the runner token";
    throw forbidden(`this route needs ${wanted}`);
  }
  return principal;
}

/**
 * A dashboard session (cookie) is the principal it signed in as: the admin or one environment.
 * Expired → 401 (sign in again); a state-changing request without the session's CSRF token → 403.
 */
async function sessionPrincipal(request: FastifyRequest, db: Knex): Promise<Principal | null> {
  const token = (request as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies?.[SESSION_COOKIE];
  if (!token) return null;
  const session = await findSession(db, token);
  if (!session) throw new StasisError("SESSION_INVALID", 401, "this dashboard session is not valid (signed out, or its API key was revoked): sign in again");
  if (session.expired) throw new StasisError("SESSION_EXPIRED", 401, "your dashboard session expired: sign in again");
  if (!SAFE_METHODS.has(request.method)) {
    const given = request.headers[CSRF_HEADER];
    if (typeof given !== "string" || !sameSecret(given, session.csrfToken)) {
      throw new StasisError("CSRF_TOKEN_INVALID", 403, `a state-changing request with a session cookie needs the session's CSRF token in ${CSRF_HEADER}`);
    }
  }
  if (session.kind === "admin") return { kind: "admin" };
  return await environmentPrincipal(db, (q) => q.where("e.id", session.environmentId));
}

/** `x-stasis-environment: <project>/<environment>` from the admin: that environment, as its own key would be. */
async function environmentNamed(request: FastifyRequest, db: Knex): Promise<EnvironmentPrincipal | null> {
  // EventSource cannot send headers: the live stream names the environment in its query instead.
  const header = request.headers[ENVIRONMENT_HEADER] ?? (request.query as { environment?: unknown } | undefined)?.environment;
  if (typeof header !== "string" || !header.includes("/")) return null;
  const slash = header.indexOf("/");
  const [project, environment] = [header.slice(0, slash), header.slice(slash + 1)];
  const principal = await environmentPrincipal(db, (q) => q.where({ "p.slug": project, "e.slug": environment }));
  if (!principal) throw new StasisError("NOT_FOUND", 404, `environment ${header} does not exist`, { field: ENVIRONMENT_HEADER });
  return principal;
}

/**
 * Key look-ups that arrive together go to PostgreSQL as one statement (coalesce.ts): under load a
 * trigger's round trips are what the server waits on. Each look-up still reads the key's current
 * row, so a revoked key stops working at once.
 */
const KEY_LOOKUP_SQL = `
  SELECT e.id AS environment_id, e.slug AS environment, p.id AS project_id, p.slug AS project, e.archived_at, k.key_hash
  FROM api_keys k JOIN environments e ON e.id = k.environment_id JOIN projects p ON p.id = e.project_id
  WHERE k.key_hash = ANY(?::text[]) AND k.revoked_at IS NULL
`;
const keyLookupsOf = coalescerPerDatabase((db) =>
  coalesce(async (hashes: string[]): Promise<Array<EnvironmentPrincipal | null>> => {
    const { rows } = await hotQuery<PrincipalRow & { key_hash: string }>(db, "stasis_key_lookup", KEY_LOOKUP_SQL, [[...new Set(hashes)]]);
    const byHash = new Map(rows.map((row) => [row.key_hash, principalOf(row)] as const));
    return hashes.map((hash) => byHash.get(hash) ?? null);
  }, { maxItems: 500 }),
);

interface PrincipalRow {
  environment_id: string;
  environment: string;
  project_id: string;
  project: string;
  archived_at: Date | null;
}

function principalQuery(db: Knex): Knex.QueryBuilder {
  return db("environments as e").join("projects as p", "p.id", "e.project_id").select("e.id as environment_id", "e.slug as environment", "p.id as project_id", "p.slug as project", "e.archived_at");
}

function principalOf(row: PrincipalRow): EnvironmentPrincipal {
  return { kind: "env", environmentId: row.environment_id, environment: row.environment, projectId: row.project_id, project: row.project, archived: row.archived_at !== null };
}

async function environmentPrincipal(db: Knex, where: (query: Knex.QueryBuilder) => Knex.QueryBuilder): Promise<EnvironmentPrincipal | null> {
  const row: PrincipalRow | undefined = await where(principalQuery(db)).first();
  return row ? principalOf(row) : null;
}

/** A resource of another environment than the caller's key. */
export function assertSameEnvironment(principal: EnvironmentPrincipal, environmentId: string, what: string): void {
  if (principal.environmentId !== environmentId) throw forbidden(`${what} belongs to another environment than this API key (${principal.project}/${principal.environment})`);
}
