import type { Knex } from "knex";
import { leaseLost, notFound } from "../errors.ts";
import type { RunRow } from "./rows.ts";
import { lockRun } from "./transition.ts";

/** Locks the run and checks the caller's lease is its current one (a fencing token). */
export async function lockLeasedRun(trx: Knex.Transaction, runId: string, leaseId: string): Promise<RunRow> {
  const run = await lockRun(trx, runId);
  if (!run) throw notFound(`run ${runId} does not exist`, "runId");
  if (run.lease_id !== leaseId) throw leaseLost(runId);
  return run;
}

/** Execution time of the slice that ends now. */
export function executedMs(run: RunRow): number {
  return Number(run.execution_ms) + (run.execution_started_at ? Math.max(0, Date.now() - run.execution_started_at.getTime()) : 0);
}
