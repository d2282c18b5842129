import type { Knex } from "knex";
import { decryptValue, encryptValue, type ValuePlace } from "./crypto.ts";
import { dataKeyFor } from "./data-keys.ts";
import { onRunFinal } from "../engine/transition.ts";
import type { RunRow } from "../engine/rows.ts";
import { effectiveVariables } from "./envvar-store.ts";
import type { Keyring } from "./keyring.ts";

// Not a variable's place: `run/…` is no scope a variable can have, so the AAD never collides.
const place = (projectId: string, runId: string): ValuePlace => ({ projectId, scope: `run/${runId}`, name: "variables" });

export interface ClaimVariablesInput {
  runId: string;
  projectId: string;
  environment: string;
  attempt: number;
  /** The claim restores a checkpoint: its process keeps the variables it was started with. */
  resume: boolean;
  /** false: the claim's own statement saw that the environment has no variables (none are read). */
  hasVariables?: boolean;
  /** false: the claim's own statement saw that the run has no variables snapshot (none is read). */
  hasSnapshot?: boolean;
}

/**
 * The variables for a claim. A fresh process gets the environment's current variables, and they are
 * recorded (encrypted) as the run's snapshot; a restored process gets the snapshot it was started
 * with, which is what it holds in memory and may print.
 */
export async function variablesForClaim(trx: Knex.Transaction, keyring: Keyring | null | undefined, input: ClaimVariablesInput): Promise<Record<string, string>> {
  if (!keyring) return {};
  if (input.resume && input.hasSnapshot !== false) {
    const kept = await runVariables(trx, keyring, input.runId);
    if (kept) return kept;
  }
  // Nothing to read and no snapshot to drop, as the claim's own statement saw.
  if (input.hasVariables === false && input.hasSnapshot === false) return {};
  const variables = await effectiveVariables(trx, keyring, input.projectId, input.environment);
  if (Object.keys(variables).length === 0) {
    await trx("run_variables").where({ run_id: input.runId }).del();
    return variables;
  }
  const dataKey = (await dataKeyFor(trx, keyring, input.projectId, { create: true }))!;
  const snapshot = encryptValue(dataKey, place(input.projectId, input.runId), JSON.stringify(variables));
  await trx("run_variables")
    .insert({ run_id: input.runId, project_id: input.projectId, attempt: input.attempt, snapshot })
    .onConflict("run_id")
    .merge({ attempt: input.attempt, snapshot, created_at: trx.fn.now() });
  return variables;
}

/** The variables the run's current process was started with, or null when none were recorded. */
export async function runVariables(db: Knex | Knex.Transaction, keyring: Keyring | null | undefined, runId: string): Promise<Record<string, string> | null> {
  if (!keyring) return null;
  const row = await db("run_variables").where({ run_id: runId }).first("project_id", "snapshot");
  if (!row) return null;
  const dataKey = (await dataKeyFor(db, keyring, row.project_id, { create: false }))!;
  return JSON.parse(decryptValue(dataKey, place(row.project_id, runId), row.snapshot)) as Record<string, string>;
}

/**
 * `variablesForClaim` for every run of one claim, in a few statements however many runs: the
 * environment's variables are read and decrypted once per environment, and the snapshots of fresh
 * processes are written with one INSERT (or one DELETE when the environment has none). Resumes
 * read their own snapshot each. A failure (a row that does not decrypt) is that run's — or, when the
 * environment's variables themselves fail, those runs' — Error in the answer, not a throw.
 */
export async function variablesForClaims(trx: Knex.Transaction, keyring: Keyring | null | undefined, inputs: ClaimVariablesInput[]): Promise<Map<string, Record<string, string> | Error>> {
  const out = new Map<string, Record<string, string> | Error>();
  if (!keyring) {
    for (const input of inputs) out.set(input.runId, {});
    return out;
  }
  const fresh: ClaimVariablesInput[] = [];
  for (const input of inputs) {
    if (!input.resume) {
      fresh.push(input);
      continue;
    }
    out.set(input.runId, await variablesForClaim(trx, keyring, input).catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))));
  }
  const groups = new Map<string, ClaimVariablesInput[]>();
  for (const input of fresh) {
    const key = `${input.projectId}\n${input.environment}`;
    groups.set(key, [...(groups.get(key) ?? []), input]);
  }
  const empty: string[] = [];
  const snapshots: Array<Record<string, unknown>> = [];
  for (const group of groups.values()) {
    const { projectId, environment } = group[0];
    try {
      const variables = group.every((i) => i.hasVariables === false) ? {} : await effectiveVariables(trx, keyring, projectId, environment);
      if (Object.keys(variables).length === 0) {
        // Only a claim writes a snapshot: a first attempt has none to delete (one statement fewer per claim).
        for (const input of group) if (input.attempt > 1) empty.push(input.runId);
      } else {
        const dataKey = (await dataKeyFor(trx, keyring, projectId, { create: true }))!;
        const json = JSON.stringify(variables);
        for (const input of group) snapshots.push({ run_id: input.runId, project_id: projectId, attempt: input.attempt, snapshot: encryptValue(dataKey, place(projectId, input.runId), json) });
      }
      for (const input of group) out.set(input.runId, variables);
    } catch (error) {
      for (const input of group) out.set(input.runId, error instanceof Error ? error : new Error(String(error)));
    }
  }
  if (empty.length > 0) await trx("run_variables").whereIn("run_id", empty).del();
  if (snapshots.length > 0) {
    await trx("run_variables")
      .insert(snapshots)
      .onConflict("run_id")
      .merge({ attempt: trx.raw("excluded.attempt"), snapshot: trx.raw("excluded.snapshot"), created_at: trx.fn.now() });
  }
  return out;
}

/**
 * A final run starts no process again and restores none: the variables its process was started
 * with are of no use to anyone from here on, so they are not kept (a database dump taken later holds
 * no trace of them, not even encrypted). In the transaction that makes the run final.
 */
const deleteVariables = async (trx: Knex.Transaction, runs: RunRow[]) => {
  // A runner's successful end deletes the snapshot in its own statement (sql/complete-attempt.ts).
  const left = runs.filter((run) => (run as RunRow & { variables_deleted?: boolean }).variables_deleted !== true).map((run) => run.id);
  if (left.length > 0) await trx("run_variables").whereIn("run_id", left).del();
};
onRunFinal(
  (trx, run) => deleteVariables(trx, [run]),
  (trx, runs) => deleteVariables(trx, runs),
);
