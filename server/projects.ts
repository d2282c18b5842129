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
export async function createEnvironmentKey(db: Knex, options: CreateEnvironmentKeyOptions): Promise<{ environment: string; apiKey: string }> {
  const env = await findEnvironment(db, options.project, options.environment);
  return await db.transaction(async (trx) => {
    if (options.revokeOthers) await trx("api_keys").where({ environment_id: env.id }).whereNull("revoked_at").update({ revoked_at: trx.fn.now() });
    return { environment: env.slug, apiKey: await insertKey(trx, env.id) };
  });
}

export async function archiveEnvironment(db: Knex, options: { project: string; environment: string }): Promise<void> {
  const env = await findEnvironment(db, options.project, options.environment);
  await db("environments").where({ id: env.id }).whereNull("archived_at").update({ archived_at: db.fn.now() });
}
