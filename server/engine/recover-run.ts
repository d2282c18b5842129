import type { Knex } from "knex";
import type { WaitResult } from "../../schemas/index.ts";
import { executedMs } from "./lease.ts";
import { maxAttemptsOf, retryOptionsFor } from "./complete-attempt.ts";
import { notify, notifyResumeQueued } from "./notify.ts";
import type { RunRow } from "./rows.ts";
import { transitionRun } from "./transition.ts";

export type RecoveryReason = "released" | "lease-expired" | "unanswered";

const LOST_MESSAGES: Record<RecoveryReason, string> = {
  released: "runner released the run",
  "lease-expired": "runner lost (lease expired)",
  unanswered: "the claim's answer never reached the runner; it started nothing",
};

/**
 * A runner gave a run back (drain), never got it (the poll's answer was lost), or lost it (lease
 * expired). The attempt ends as LOST and the run is queued as a new attempt: from its last checkpoint when it has one (the resume carries that
 * checkpoint's wait result again), else from the start. A lost run out of attempts FAILS.
 */
export async function recoverRun(trx: Knex.Transaction, run: RunRow, why: RecoveryReason): Promise<RunRow | null> {
  if (run.status !== "EXECUTING" && run.status !== "WAITING") return null;
  await trx("run_attempts")
    .where({ run_id: run.id, number: run.attempt_count, status: "EXECUTING" })
    .update({ status: "LOST", ended_at: trx.fn.now(), error: JSON.stringify({ name: "RunnerLost", message: LOST_MESSAGES[why] }) });
  // A wait the process was blocked on dies with the process, unless the checkpoint is of that wait
  // or it is keyed: the next attempt reaches it again, and what arrives for it meanwhile is kept.
  if (run.waitpoint_id && run.waitpoint_id !== run.checkpoint_waitpoint_id) {
    await trx("waitpoints").where({ id: run.waitpoint_id, status: "PENDING" }).whereNull("wait_key").update({ status: "CANCELED", completed_at: trx.fn.now(), result: JSON.stringify({ kind: "canceled" }) });
  }
  const common = { execution_ms: executedMs(run), execution_started_at: null, deadline_at: null, runner_id: null, lease_id: null, lease_expires_at: null, waitpoint_id: null };
  if (why === "lease-expired") {
    const retry = await retryOptionsFor(trx, run);
    if (run.attempt_count >= maxAttemptsOf(run, retry)) {
      return await transitionRun(trx, run, "FAILED", { ...common, error: JSON.stringify({ name: "RunnerLost", message: `runner lost: no heartbeat for the run's lease, and all ${run.attempt_count} attempts are used` }) });
    }
  }
  let resume: { checkpointLocation: string; waitpointId: string | null; result: WaitResult | null } | null = null;
  // A checkpoint of the run while it ran (a safety checkpoint): the next attempt goes on from there.
  if (run.checkpoint_location && !run.checkpoint_waitpoint_id) resume = { checkpointLocation: run.checkpoint_location, waitpointId: null, result: null };
  if (run.checkpoint_location && run.checkpoint_waitpoint_id) {
    const wp = await trx("waitpoints").where({ id: run.checkpoint_waitpoint_id }).first("status", "result");
    if (wp && wp.status !== "PENDING") resume = { checkpointLocation: run.checkpoint_location, waitpointId: run.checkpoint_waitpoint_id, result: wp.result };
    else if (wp?.status === "PENDING" && run.status === "WAITING") {
      // Still waiting at its checkpoint: it goes back to sleep there, nothing to run.
      const suspended = await transitionRun(trx, run, "SUSPENDED", { ...common, waitpoint_id: run.checkpoint_waitpoint_id });
      return suspended;
    }
  }
  const next = await transitionRun(trx, run, "QUEUED", { ...common, resume: resume ? JSON.stringify(resume) : null, available_at: trx.fn.now() });
  await (resume ? notifyResumeQueued(trx) : notify(trx, "runs"));
  return next;
}
