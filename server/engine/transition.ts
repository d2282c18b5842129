import type { Knex } from "knex";
import { canTransition, isFinalRunStatus, type RunStatus } from "../../schemas/index.ts";
import { StasisError } from "../errors.ts";
import type { RunRow } from "./rows.ts";
import { notifyRunChange } from "./run-changes.ts";

export type RunPatch = Partial<Record<keyof RunRow, unknown>>;

type FinalHook = (trx: Knex.Transaction, run: RunRow) => Promise<void>;
const finalHooks: FinalHook[] = [];

/** Called in the same transaction whenever a run reaches a final state (parents' `runs` waitpoints). */
export function onRunFinal(hook: FinalHook): void {
  finalHooks.push(hook);
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
  await notifyRunChange(trx, { env: (row as RunRow).environment_id, run: run.id, what: to });
  if (isFinalRunStatus(to)) for (const hook of finalHooks) await hook(trx, row as RunRow);
  return row as RunRow;
}

/** Reads and locks a run for a state change. */
export async function lockRun(trx: Knex.Transaction, runId: string): Promise<RunRow | null> {
  return ((await trx("runs").where({ id: runId }).forUpdate().first()) as RunRow | undefined) ?? null;
}
