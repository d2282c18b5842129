import type { Knex } from "knex";
import type { WaitResult } from "../../schemas/index.ts";
import { completeWaitpointRow } from "../sql/complete-waitpoint.ts";
import { notify, notifyResumeQueued } from "./notify.ts";
import { resumeHoldColumns } from "./resume-hold.ts";
import { pushContinue, pushToAnyPoll, pushToHolder, pushToHolderSite } from "./resume-push.ts";
import type { RunRow, WaitpointRow } from "./rows.ts";
import { onRunFinal, transitionRun } from "./transition.ts";
import { hotQuery } from "../db/prepared.ts";

/**
 * Completes a waitpoint and wakes whoever waits on it: a WAITING run (process alive) gets a
 * `continue` in its runner's next poll (or in the one asleep now, resume-push.ts); a SUSPENDED run is QUEUED with `resume` so any runner
 * restores its checkpoint with the result (first the one that took it, see resume-hold.ts).
 */
export async function completeWaitpoint(trx: Knex.Transaction, id: string, result: WaitResult, status: "COMPLETED" | "TIMED_OUT" | "CANCELED" = "COMPLETED"): Promise<WaitpointRow | null> {
  const wp = await completeWaitpointRow(trx, id, status, result);
  if (!wp) return null;
  if (wp.run_id) {
    const run = (await trx("runs").where({ id: wp.run_id }).forUpdate().first()) as RunRow | undefined;
    if (run && run.waitpoint_id === wp.id) {
      if (run.status === "SUSPENDED") await queueResume(trx, run, wp.id, result);
      else if (!(run.status === "WAITING" && (await pushContinue(trx, run, wp.id, result)))) await notify(trx, "runs");
    }
  }
  return wp;
}

/**
 * Queues a suspended run to resume from its checkpoint with its wait's result: straight to the runner
 * that took the checkpoint when its long poll waits here (resume-push.ts), or to one keeping its dumps
 * beside it (its checkpoint site), else for any runner, first for that one and its site (resume-hold.ts);
 * with no runner to hold it for, straight to any runner's poll asleep here.
 */
async function queueResume(trx: Knex.Transaction, run: RunRow, waitpointId: string, result: WaitResult): Promise<void> {
  const resume = JSON.stringify({ checkpointLocation: run.checkpoint_location, waitpointId, result });
  const holder = run.checkpoint_runner_id;
  // The holder's own poll first; else one of a runner beside it that restores the dump it kept just as well.
  const toHolder = holder ? (pushToHolder(trx, holder) ?? (await pushToHolderSite(trx, holder, run.checkpoint_workload))) : null;
  const hold = toHolder ? null : await resumeHoldColumns(trx, run);
  // Held for its holder (around, but not asleep here with a slot): it waits for that runner. Held for none: any poll asleep here may take it now.
  const push = toHolder ?? (hold?.resume_runner_id ? null : await pushToAnyPoll(trx, run.checkpoint_workload));
  if (push) {
    if (await push.queueAndClaim(trx, run, resume)) return;
  } else {
    await transitionRun(trx, run, "QUEUED", { resume, available_at: trx.fn.now(), ...hold });
  }
  await notifyResumeQueued(trx);
}

/**
 * A final run reaches none of its waits again: what is still PENDING is canceled, so no event is
 * counted as delivered to it and no timer fires for it. SKIP LOCKED: a waitpoint being completed
 * right now (locked waitpoint → run, the other order) is left to that completion, which then finds
 * the run final and wakes nobody.
 */
const PENDING_WAITS_SQL = `SELECT id FROM waitpoints WHERE run_id = ANY(?::text[]) AND status = 'PENDING' FOR UPDATE SKIP LOCKED`;
const cancelPendingWaits = async (trx: Knex.Transaction, runIds: string[]) => {
  const pending = (await hotQuery<{ id: string }>(trx, "stasis_pending_waits_of_runs", PENDING_WAITS_SQL, [runIds])).rows.map((r) => r.id);
  if (pending.length) await trx("waitpoints").whereIn("id", pending).where({ status: "PENDING" }).update({ status: "CANCELED", completed_at: trx.fn.now(), result: JSON.stringify({ kind: "canceled" }) });
};
onRunFinal(
  (trx, run) => cancelPendingWaits(trx, [run.id]),
  (trx, runs) => cancelPendingWaits(trx, runs.map((r) => r.id)),
);
