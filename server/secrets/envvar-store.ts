import type { Knex } from "knex";
import type { EnvVarView } from "../../schemas/index.ts";
import { notFound } from "../errors.ts";
import { decryptValue, encryptValue } from "./crypto.ts";
import { dataKeyFor } from "./data-keys.ts";
import type { Keyring } from "./keyring.ts";

/** Where a caller reads or writes: the project, and an environment slug or `preview`. */
export interface EnvVarTarget {
  projectId: string;
  project: string;
  scope: string;
}

/** Every `preview/<branch>` inherits the `preview` set; its own rows win per name. */
export function inheritedScopes(scope: string): string[] {
  return scope.startsWith("preview/") ? ["preview", scope] : [scope];
}

interface Row {
  scope: string;
  name: string;
  value_encrypted: Buffer;
  updated_at: Date;
}

async function readRows(db: Knex | Knex.Transaction, projectId: string, scopes: string[]): Promise<Row[]> {
  return await db("environment_variables").where({ project_id: projectId }).whereIn("scope", scopes).orderBy("name").select("scope", "name", "value_encrypted", "updated_at");
}

/** The variables an environment's tasks get: inherited set, then its own, decrypted. */
export async function effectiveVariables(db: Knex | Knex.Transaction, keyring: Keyring | null | undefined, projectId: string, environment: string): Promise<Record<string, string>> {
  const scopes = inheritedScopes(environment);
  const rows = await readRows(db, projectId, scopes);
  if (rows.length === 0) return {};
  const dataKey = (await dataKeyFor(db, keyring, projectId, { create: false }))!;
  const out: Record<string, string> = {};
  for (const scope of scopes) {
    for (const row of rows.filter((r) => r.scope === scope)) out[row.name] = decryptValue(dataKey, { projectId, scope, name: row.name }, row.value_encrypted);
  }
  return out;
}

/** The scope's variables (inherited ones marked by their source); values only when `reveal`. */
export async function listVariables(db: Knex, keyring: Keyring | null | undefined, target: EnvVarTarget, reveal: boolean): Promise<EnvVarView[]> {
  const scopes = inheritedScopes(target.scope);
  const rows = await readRows(db, target.projectId, scopes);
  const dataKey = reveal && rows.length > 0 ? await dataKeyFor(db, keyring, target.projectId, { create: false }) : null;
  const byName = new Map<string, EnvVarView>();
  for (const scope of scopes) {
    for (const row of rows.filter((r) => r.scope === scope)) {
      byName.set(row.name, {
        name: row.name,
        source: scope,
        updatedAt: row.updated_at.toISOString(),
        ...(dataKey ? { value: decryptValue(dataKey, { projectId: target.projectId, scope, name: row.name }, row.value_encrypted) } : {}),
      });
    }
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export async function getVariable(db: Knex, keyring: Keyring | null | undefined, target: EnvVarTarget, name: string): Promise<EnvVarView> {
  const found = (await listVariables(db, keyring, target, true)).find((v) => v.name === name);
  if (!found) throw notFound(`variable ${name} is not set in ${target.project}/${target.scope}`, "name");
  return found;
}

/**
 * Upserts the variables in one transaction (with `replace`, also deletes the scope's other names):
 * a failure anywhere leaves every old value in place.
 */
export async function setVariables(
  db: Knex,
  keyring: Keyring | null | undefined,
  target: EnvVarTarget,
  variables: Record<string, string>,
  options: { replace?: boolean } = {},
): Promise<{ set: string[]; deleted: string[] }> {
  return await db.transaction(async (trx) => {
    const dataKey = (await dataKeyFor(trx, keyring, target.projectId, { create: true }))!;
    const names = Object.keys(variables).sort();
    let deleted: string[] = [];
    if (options.replace) {
      const gone = await trx("environment_variables").where({ project_id: target.projectId, scope: target.scope }).whereNotIn("name", names.length > 0 ? names : [""]).del().returning("name");
      deleted = gone.map((r: { name: string }) => r.name).sort();
    }
    if (names.length > 0) {
      await trx("environment_variables")
        .insert(
          names.map((name) => ({
            project_id: target.projectId,
            scope: target.scope,
            name,
            value_encrypted: encryptValue(dataKey, { projectId: target.projectId, scope: target.scope, name }, variables[name]!),
          })),
        )
        .onConflict(["project_id", "scope", "name"])
        .merge({ value_encrypted: trx.raw("excluded.value_encrypted"), updated_at: trx.fn.now() });
    }
    return { set: names, deleted };
  });
}

/** Deletes the scope's own variable (an inherited `preview` value stays visible to a preview). */
export async function deleteVariable(db: Knex, target: EnvVarTarget, name: string): Promise<boolean> {
  const count = await db("environment_variables").where({ project_id: target.projectId, scope: target.scope, name }).del();
  return count > 0;
}
