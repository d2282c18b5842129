import type { Knex } from "knex";
import { canTransition, isFinalRunStatus, type RunStatus } from "../../schemas/index.ts";
import { StasisError } from "../errors.ts";
import type { RunRow } from "./rows.ts";
import { notifyRunChanges } from "./notify.ts";

export type RunPatch = Partial<Record<keyof RunRow, unknown>>;

type FinalHook = (trx: Knex.Transaction, run: RunRow) => Promise<void>;
/** The same hook for several runs that reached a final state in one transaction, in a few statements. */
type FinalHookMany = (trx: Knex.Transaction, runs: RunRow[]) => Promise<void>;
const finalHooks: Array<{ one: FinalHook; many?: FinalHookMany }> = [];

/**
 * Called in the same transaction whenever a run reaches a final state (parents' `runs` waitpoints).
 * `many`, when given, must do what `one` does for each run (batched ends use it).
 */
export function onRunFinal(hook: FinalHook, many?: FinalHookMany): void {
  finalHooks.push({ one: hook, many });
}

/**
 * The one way a run changes state: check the transition table, then compare-and-set on the state
 * we read. Returns the new row, or null when someone else moved the run first.
 */
export async function transitionRun(trx: Knex.Transaction, run: Pick<RunRow, "id" | "status">, to: RunStatus, patch: RunPatch = {}): Promise<RunRow | null> {
  if (!canTransition(run.status, to)) {
    throw new StasisError("INVALID_TRANSITION", 409, `run ${run.id} cannot go from ${run.status} to ${to}`);
  }
  const values: Record<string, unknown> = { ...patch, status: to };
  if (isFinalRunStatus(to)) values.completed_at ??= trx.fn.now();
  const [row] = await trx("runs").where({ id: run.id, status: run.status }).update(values).returning("*");
  if (!row) return null;
  await notifyRunChanges(trx, [{ env: (row as RunRow).environment_id, run: run.id, what: to }]);
  if (isFinalRunStatus(to)) for (const hook of finalHooks) await hook.one(trx, row as RunRow);
  return row as RunRow;
}

/** The final hooks, for a caller that moved a run to a final state with its own compare-and-set statement. */
export async function runFinalHooks(trx: Knex.Transaction, runs: RunRow[]): Promise<void> {
  if (runs.length === 0) return;
  await notifyRunChanges(trx, runs.map((run) => ({ env: run.environment_id, run: run.id, what: run.status })));
  for (const hook of finalHooks) {
    if (hook.many && runs.length > 1) await hook.many(trx, runs);
    else for (const run of runs) await hook.one(trx, run);
  }
}

/** Reads and locks a run for a state change. */
export async function lockRun(trx: Knex.Transaction, runId: string): Promise<RunRow | null> {
  return ((await trx("runs").where({ id: runId }).forUpdate().first()) as RunRow | undefined) ?? null;
}
