import type { Knex } from "knex";
import { createRedactor } from "../../schemas/index.ts";
import { effectiveVariables } from "./envvar-store.ts";
import type { Keyring } from "./keyring.ts";
import { runVariables } from "./run-variables.ts";
import { connectionSecretsOfRun } from "../connections/store.ts";

type Redactor = ReturnType<typeof createRedactor>;
const TTL_MS = 2_000;
const MAX_ENTRIES = 1_000;

/**
 * Server-side log redaction (the runner redacts first; this is the second line): the values of the
 * run's environment now, and those its process was started with (a restored process may print a
 * value changed since), and the current tokens of the connections the run was handed. Cached for a moment per run, so a chatty run does not cost decrypts per batch.
 */
export function createRunRedaction(db: Knex, keyring: Keyring | null | undefined) {
  const cache = new Map<string, { at: number; redactor: Promise<Redactor> }>();
  return async function redactorFor(run: { id: string; environmentId: string }): Promise<Redactor> {
    const hit = cache.get(run.id);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.redactor;
    const redactor = (async () => {
      if (!keyring) return createRedactor({});
      const env = await db("environments").where({ id: run.environmentId }).first("project_id", "slug");
      const current = env ? await effectiveVariables(db, keyring, env.project_id, env.slug) : {};
      const started = (await runVariables(db, keyring, run.id)) ?? {};
      const tokens = env ? await connectionSecretsOfRun(db, keyring, env.project_id, run.id) : [];
      // Both values of a name that changed get redacted, each as that name.
      return createRedactor([...Object.entries(current), ...Object.entries(started), ...tokens]);
    })();
    if (cache.size >= MAX_ENTRIES) cache.clear();
    cache.set(run.id, { at: Date.now(), redactor });
    redactor.catch(() => cache.delete(run.id));
    return redactor;
  };
}
