import type { Knex } from "knex";
import { createRedactor } from "../../schemas/index.ts";
import type { Keyring } from "../secrets/keyring.ts";
import { connectionSecretsOfRun } from "./store.ts";

/**
 * A run's output or error with the current tokens of the connections it was handed replaced by
 * `[redacted:connection:<slug>]`, as its log lines are (the runner already did it with the tokens it
 * handed out; this is the second line, for a process restored on a runner that never handed them).
 * Only runs with `run_connections` rows get here, so other ends pay nothing but an EXISTS.
 */
export async function redactRunResult<T>(db: Knex | Knex.Transaction, keyring: Keyring | null | undefined, run: { id: string; environment_id: string }, value: T): Promise<T> {
  if (!keyring || value === null || value === undefined) return value;
  const env = await db("environments").where({ id: run.environment_id }).first("project_id");
  if (!env) return value;
  const tokens = await connectionSecretsOfRun(db as Knex, keyring, env.project_id, run.id);
  return tokens.length === 0 ? value : createRedactor(tokens).deep(value);
}

/** Whether the run was handed a connection token (the runs worth redacting). */
export async function runHoldsTokens(db: Knex | Knex.Transaction, runId: string): Promise<boolean> {
  return (await db("run_connections").where({ run_id: runId }).first("run_id")) !== undefined;
}
