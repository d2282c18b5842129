import type { Knex } from "knex";
import { newApiKey, sha256 } from "./auth.ts";
import { conflict, notFound } from "./errors.ts";

export const STANDARD_ENVIRONMENTS = ["production", "staging", "development"] as const;

export interface EnsureProjectOptions {
  slug: string;
  repository?: string;
}

export interface EnsureProjectResult {
  projectId: string;
  created: boolean;
  /** Keys of environments created by this call (shown once). */
  keys: Array<{ environment: string; apiKey: string }>;
}

/** Creates the project and its standard environments when missing; idempotent. */
export async function ensureProject(db: Knex, options: EnsureProjectOptions): Promise<EnsureProjectResult> {
  return await db.transaction(async (trx) => {
    const inserted = await trx("projects")
      .insert({ slug: options.slug, repository: options.repository ?? null })
      .onConflict("slug")
      .ignore()
      .returning("id");
    const project = inserted[0] ?? (await trx("projects").where({ slug: options.slug }).first("id"));
    const keys: EnsureProjectResult["keys"] = [];
    for (const environment of STANDARD_ENVIRONMENTS) {
      const created = await insertEnvironment(trx, project.id, environment);
      if (created) keys.push({ environment, apiKey: await insertKey(trx, created) });
    }
    return { projectId: project.id, created: inserted.length > 0, keys };
  });
}

async function insertEnvironment(trx: Knex.Transaction, projectId: string, slug: string): Promise<string | null> {
  const rows = await trx("environments").insert({ project_id: projectId, slug }).onConflict(["project_id", "slug"]).ignore().returning("id");
  return rows[0]?.id ?? null;
}

async function insertKey(trx: Knex | Knex.Transaction, environmentId: string): Promise<string> {
  const env = await trx("environments").where({ id: environmentId }).first("slug");
  const apiKey = newApiKey(env.slug);
  await trx("api_keys").insert({ environment_id: environmentId, key_hash: sha256(apiKey) });
  return apiKey;
}

export async function findEnvironment(db: Knex, project: string, environment: string) {
  const row = await db("environments as e")
    .join("projects as p", "p.id", "e.project_id")
    .where({ "p.slug": project, "e.slug": environment })
    .first("e.*");
  if (!row) throw notFound(`environment ${project}/${environment} does not exist`);
  return row as { id: string; slug: string; project_id: string; archived_at: Date | null };
}

/** Creates the environment when missing (e.g. `preview/pr-3`) and returns a new key for it. */
export async function createEnvironment(db: Knex, options: { project: string; environment: string }): Promise<{ environment: string; apiKey: string }> {
  return await db.transaction(async (trx) => {
    const project = await trx("projects").where({ slug: options.project }).first("id");
    if (!project) throw notFound(`project ${options.project} does not exist`);
    const existing = await trx("environments").where({ project_id: project.id, slug: options.environment }).first();
    if (existing?.archived_at) throw conflict(`environment ${options.environment} is archived`, "ENVIRONMENT_ARCHIVED");
    const id = existing?.id ?? (await insertEnvironment(trx, project.id, options.environment)) ?? (await trx("environments").where({ project_id: project.id, slug: options.environment }).first("id")).id;
    return { environment: options.environment, apiKey: await insertKey(trx, id) };
  });
}

export interface CreateEnvironmentKeyOptions {
  project: string;
  environment: string;
  /** Revoke the environment's other keys (rotation). */
  revokeOthers?: boolean;
}

/** A fresh API key for an existing environment (used by `stasis dev` and key rotation). */
export async function createEnvironmentKey(db: Knex, options: CreateEnvironmentKeyOptions): Promise<{ environment: string; apiKey: string; id: string; revoked: number }> {
  const env = await findEnvironment(db, options.project, options.environment);
  return await db.transaction(async (trx) => {
    const revoked = options.revokeOthers ? await trx("api_keys").where({ environment_id: env.id }).whereNull("revoked_at").update({ revoked_at: trx.fn.now() }) : 0;
    const apiKey = await insertKey(trx, env.id);
    const { id } = await trx("api_keys").where({ key_hash: sha256(apiKey) }).first("id");
    return { environment: env.slug, apiKey, id, revoked };
  });
}

export async function archiveEnvironment(db: Knex, options: { project: string; environment: string }): Promise<void> {
  const env = await findEnvironment(db, options.project, options.environment);
  await db("environments").where({ id: env.id }).whereNull("archived_at").update({ archived_at: db.fn.now() });
}

export interface EnvironmentSummary {
  slug: string;
  project: string;
  archived: boolean;
  promotedVersion: string | null;
}

/** Every environment of the projects named (all projects when `projects` is absent), with its promoted version. */
export async function listEnvironments(db: Knex, projects?: string[]): Promise<EnvironmentSummary[]> {
  const query = db("environments as e")
    .join("projects as p", "p.id", "e.project_id")
    .leftJoin("deployments as d", "d.id", "e.promoted_deployment_id")
    .orderBy([{ column: "p.slug" }, { column: "e.slug" }])
    .select<Array<{ slug: string; project: string; archived_at: Date | null; version: string | null }>>("e.slug", "p.slug as project", "e.archived_at", "d.version");
  if (projects) query.whereIn("p.slug", projects);
  return (await query).map((row) => ({ slug: row.slug, project: row.project, archived: row.archived_at !== null, promotedVersion: row.version }));
}

export async function listProjects(db: Knex): Promise<Array<{ slug: string; repository: string | null; createdAt: string; environments: EnvironmentSummary[] }>> {
  const projects = await db("projects").orderBy("slug").select<Array<{ slug: string; repository: string | null; created_at: Date }>>("slug", "repository", "created_at");
  const environments = await listEnvironments(db);
  return projects.map((p) => ({ slug: p.slug, repository: p.repository, createdAt: p.created_at.toISOString(), environments: environments.filter((e) => e.project === p.slug) }));
}

export async function requireProject(db: Knex, slug: string): Promise<{ id: string; slug: string; repository: string | null }> {
  const project = await db("projects").where({ slug }).first("id", "slug", "repository");
  if (!project) throw notFound(`project ${slug} does not exist`, "project");
  return project;
}

/**
 * Links a project to a GitHub repository (`owner/name`, or null to unlink): the Action's OIDC exchange
 * and the GitHub App deploy only into the project linked to their repository. A repository links to
 * one project at most.
 */
export async function linkRepository(db: Knex, slug: string, repository: string | null, normalize: (name: string) => string): Promise<void> {
  await db.transaction(async (trx) => {
    const project = await trx("projects").where({ slug }).forUpdate().first("id");
    if (!project) throw notFound(`project ${slug} does not exist`, "project");
    if (repository) {
      const wanted = normalize(repository);
      const others = (await trx("projects").whereNot({ id: project.id }).whereNotNull("repository").select("slug", "repository")).filter((p) => normalize(p.repository) === wanted);
      if (others.length) throw conflict(`${repository} is already linked to project ${others[0].slug}; unlink it there first`, "REPOSITORY_LINKED");
    }
    await trx("projects").where({ id: project.id }).update({ repository });
  });
}

export async function listKeys(db: Knex, project: string, environment: string): Promise<Array<{ id: string; environment: string; createdAt: string; revokedAt: string | null }>> {
  const env = await findEnvironment(db, project, environment);
  const rows = await db("api_keys").where({ environment_id: env.id }).orderBy("created_at").select<Array<{ id: string; created_at: Date; revoked_at: Date | null }>>("id", "created_at", "revoked_at");
  return rows.map((row) => ({ id: row.id, environment: env.slug, createdAt: row.created_at.toISOString(), revokedAt: row.revoked_at?.toISOString() ?? null }));
}

/** Revokes one key of an environment; revoking a revoked key again is a no-op. */
export async function revokeKey(db: Knex, project: string, environment: string, keyId: string): Promise<void> {
  const env = await findEnvironment(db, project, environment);
  const key = /^[0-9a-f-]{36}$/i.test(keyId) ? await db("api_keys").where({ id: keyId, environment_id: env.id }).first("id") : undefined;
  if (!key) throw notFound(`key ${keyId} does not exist in ${project}/${environment}`, "keyId");
  await db("api_keys").where({ id: keyId }).whereNull("revoked_at").update({ revoked_at: db.fn.now() });
}
