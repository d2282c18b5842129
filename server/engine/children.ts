import type { Knex } from "knex";
import { isFinalRunStatus, type ChildRunResult, type RunStatus } from "../../schemas/index.ts";
import type { RunRow, WaitpointRow } from "./rows.ts";
import { onRunFinal } from "./transition.ts";
import { completeWaitpoint } from "./waitpoints.ts";
import { hotQuery } from "../db/prepared.ts";

function resultOf(run: RunRow): ChildRunResult {
  if (run.status === "COMPLETED") return { ok: true, runId: run.id, taskId: run.task_id, output: run.output ?? null };
  const error = (run.error as { name: string; message: string } | null) ?? { name: `Run${run.status}`, message: `child run ${run.id} ended ${run.status}` };
  return { ok: false, runId: run.id, taskId: run.task_id, error };
}

/** Results in the order of `runIds`, or null while any child is still going. */
export async function childResults(trx: Knex.Transaction, runIds: string[], lock: boolean): Promise<ChildRunResult[] | null> {
  const query = trx("runs").whereIn("id", runIds);
  // FOR SHARE: a child finishing concurrently either committed already (we see it final) or waits
  // for us to commit (its final hook then sees our waitpoint). Either way nobody misses it.
  const rows = (await (lock ? query.forShare() : query)) as RunRow[];
  const byId = new Map(rows.map((r) => [r.id, r]));
  const results: ChildRunResult[] = [];
  for (const id of runIds) {
    const row = byId.get(id);
    if (!row || !isFinalRunStatus(row.status as RunStatus)) return null;
    results.push(resultOf(row));
  }
  return results;
}

const PARENTS_WAITING_SQL = `SELECT * FROM waitpoints WHERE status = 'PENDING' AND kind = 'runs' AND child_run_ids && ?::text[] ORDER BY id FOR UPDATE`;

/** When a child run ends, complete every parent `runs` waitpoint whose children are all final. */
const completeParentsOf = async (trx: Knex.Transaction, runIds: string[]) => {
  // `&&` (overlap) with one id is `@>` with one id; the GIN index serves both.
  const waitpoints = (await hotQuery<WaitpointRow>(trx, "stasis_parents_waiting_on", PARENTS_WAITING_SQL, [runIds])).rows;
  for (const wp of waitpoints) {
    const results = await childResults(trx, wp.child_run_ids ?? [], false);
    if (results) await completeWaitpoint(trx, wp.id, { kind: "runs", results });
  }
};
onRunFinal(
  (trx, run) => completeParentsOf(trx, [run.id]),
  (trx, runs) => completeParentsOf(trx, runs.map((r) => r.id)),
);
