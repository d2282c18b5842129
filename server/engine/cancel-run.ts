import { inTransaction } from "../db/transaction.ts";
import type { Knex } from "knex";
import { isFinalRunStatus } from "../../schemas/index.ts";
import { conflict, notFound } from "../errors.ts";
import type { Engine } from "./context.ts";
import { queueCheckpointDeletion } from "./checkpoint-deletions.ts";
import { executedMs } from "./lease.ts";
import { notify } from "./notify.ts";
import type { RunRow } from "./rows.ts";
import { lockRun, transitionRun } from "./transition.ts";

/**
 * Cancels a run and, recursively, its unfinished children. A run on a runner gets a `stop` in that
 * runner's next poll; a suspended run's checkpoint goes on the `checkpoints_to_delete` list that
 * polls hand out (`deleteCheckpoints`), so a runner with access to the store removes it.
 */
export async function cancelRun(engine: Engine, runId: string): Promise<void> {
  await inTransaction(engine.db, async (trx) => {
    // Lock order waitpoint → run, as completion does.
    const peek = await trx("runs").where({ id: runId }).first("waitpoint_id");
    if (peek?.waitpoint_id) await trx("waitpoints").where({ id: peek.waitpoint_id }).forUpdate().first("id");
    const run = await lockRun(trx, runId);
    if (!run) throw notFound(`run ${runId} does not exist`, "id");
    if (isFinalRunStatus(run.status)) throw conflict(`run ${runId} is already ${run.status}`, "RUN_FINISHED");
    await cancelLocked(trx, run, "canceled");
    await notify(trx, "runs");
  });
}

export async function cancelLocked(trx: Knex.Transaction, run: RunRow, reason: string): Promise<void> {
  const onRunner = run.status === "EXECUTING" || run.status === "WAITING";
  if (run.waitpoint_id) {
    await trx("waitpoints").where({ id: run.waitpoint_id, status: "PENDING" }).update({ status: "CANCELED", completed_at: trx.fn.now(), result: JSON.stringify({ kind: "canceled" }) });
  }
  if (run.status === "SUSPENDED" && run.checkpoint_location) await queueCheckpointDeletion(trx, run.id, run.checkpoint_location);
  const updated = await transitionRun(trx, run, "CANCELED", {
    execution_ms: onRunner ? executedMs(run) : run.execution_ms,
    execution_started_at: null,
    deadline_at: null,
    lease_expires_at: null,
    stop_pending: onRunner,
    stop_reason: onRunner ? reason : null,
    checkpoint_location: null,
    checkpoint_sha256: null,
    checkpoint_workload: null,
    checkpoint_runner_id: null,
    checkpoint_key: null,
  });
  if (!updated) return;
  await trx("run_attempts").where({ run_id: run.id, number: run.attempt_count, status: "EXECUTING" }).update({ status: "CANCELED", ended_at: trx.fn.now() });
  const children = (await trx("runs").where({ parent_run_id: run.id }).whereNotIn("status", ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT", "EXPIRED"]).forUpdate()) as RunRow[];
  for (const child of children) await cancelLocked(trx, child, `parent run ${run.id} was canceled`);
}
