import type { Knex } from "knex";
import { createRedactor } from "../../schemas/index.ts";
import { effectiveVariables } from "./envvar-store.ts";
import type { Keyring } from "./keyring.ts";

type Redactor = ReturnType<typeof createRedactor>;
const TTL_MS = 2_000;
const MAX_ENTRIES = 1_000;

/**
 * Server-side log redaction (the runner redacts first; this is the second line): the current
 * variables of a run's environment, cached for a moment per environment so a chatty run does not
 * cost a decrypt per batch of lines.
 */
export function createRunRedaction(db: Knex, keyring: Keyring | null | undefined) {
  const cache = new Map<string, { at: number; redactor: Promise<Redactor> }>();
  return async function redactorFor(environmentId: string): Promise<Redactor> {
    const hit = cache.get(environmentId);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.redactor;
    const redactor = (async () => {
      if (!keyring) return createRedactor({});
      const env = await db("environments").where({ id: environmentId }).first("project_id", "slug");
      return createRedactor(env ? await effectiveVariables(db, keyring, env.project_id, env.slug) : {});
    })();
    if (cache.size >= MAX_ENTRIES) cache.clear();
    cache.set(environmentId, { at: Date.now(), redactor });
    redactor.catch(() => cache.delete(environmentId));
    return redactor;
  };
}
