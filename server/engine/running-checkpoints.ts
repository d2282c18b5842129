import type { z } from "zod";
import type { HandOverRequest, SafetyCheckpointRequest } from "../../schemas/index.ts";
import { inTransaction } from "../db/transaction.ts";
import { conflict } from "../errors.ts";
import { sealColumnsFor } from "../secrets/checkpoint-seals.ts";
import type { Engine } from "./context.ts";
import { executedMs, lockLeasedRun } from "./lease.ts";
import { notifyResumeQueued } from "./notify.ts";
import type { RunRow } from "./rows.ts";
import { transitionRun } from "./transition.ts";

/*
 * Checkpoints of a run that is running, not waiting: a draining runner's (hand-over) and the periodic
 * safety checkpoints of a task that asked for them. Both record the checkpoint as the run's own with
 * no waitpoint (`checkpoint_waitpoint_id` NULL): a resume from it restores the process and hands it
 * nothing, the process goes on from where it was dumped.
 */

/**
 * The columns that make `checkpoint` the run's checkpoint, taken at `waitpointId` (null: while it ran).
 * It resumes only on a runner of the workload that took it, the reporting runner's (see sql/claim-runs.ts).
 * `keptLocally`: the reporting runner keeps the dump on its disk, so a resume goes to it first (resume-hold.ts).
 */
export async function checkpointColumns(trx: Parameters<typeof sealColumnsFor>[0], engine: Engine, run: RunRow, checkpoint: z.infer<typeof HandOverRequest>["checkpoint"], waitpointId: string | null, keptLocally = false) {
  const seal = await sealColumnsFor(trx, engine.keyring, run, checkpoint);
  const runner = run.runner_id ? await trx("runners").where({ id: run.runner_id }).first("workload") : undefined;
  return { checkpoint_location: checkpoint.location, ...seal, checkpoint_workload: (runner?.workload as string | undefined) ?? null, checkpoint_runner_id: keptLocally ? run.runner_id : null, checkpoint_waitpoint_id: waitpointId };
}

/**
 * A draining runner froze a running run: EXECUTING → QUEUED with a `resume` that names the
 * checkpoint and no wait. The attempt stays open (the claim that resumes it continues the same
 * attempt: nothing was lost), and the execution clock stops until then. Compare-and-set on the
 * lease and the state; a repeat of a hand-over already applied answers as the first did.
 */
export async function handOverRun(engine: Engine, runId: string, body: z.infer<typeof HandOverRequest>): Promise<{ status: "QUEUED" }> {
  return await inTransaction(engine.db, async (trx) => {
    const seen = (await trx("runs").where({ id: runId }).first("checkpoint_location")) as Pick<RunRow, "checkpoint_location"> | undefined;
    if (seen?.checkpoint_location === body.checkpoint.location) return { status: "QUEUED" as const };
    const run = await lockLeasedRun(trx, runId, body.leaseId);
    if (run.status !== "EXECUTING") throw conflict(`run ${runId} is ${run.status}; only an EXECUTING run can be handed over`, "INVALID_TRANSITION");
    const columns = await checkpointColumns(trx, engine, run, body.checkpoint, null);
    const moved = await transitionRun(trx, run, "QUEUED", {
      ...columns,
      resume: JSON.stringify({ checkpointLocation: body.checkpoint.location, waitpointId: null, result: null }),
      available_at: trx.fn.now(),
      execution_ms: executedMs(run),
      execution_started_at: null,
      deadline_at: null,
      runner_id: null,
      lease_id: null,
      lease_expires_at: null,
    });
    if (!moved) throw conflict(`run ${runId} changed while it was handed over`, "INVALID_TRANSITION");
    await notifyResumeQueued(trx);
    return { status: "QUEUED" as const };
  });
}

/**
 * A safety checkpoint (the process went on running): from now on the run resumes from it if its
 * runner dies. The state does not change; the lease is checked and the row locked. Answers the
 * checkpoint it replaces, which the runner deletes (nobody resumes from it any more).
 */
export async function recordSafetyCheckpoint(engine: Engine, runId: string, body: z.infer<typeof SafetyCheckpointRequest>): Promise<{ previous: string | null }> {
  return await inTransaction(engine.db, async (trx) => {
    const run = await lockLeasedRun(trx, runId, body.leaseId);
    if (run.checkpoint_location === body.checkpoint.location) return { previous: null }; // a repeat
    if (run.status !== "EXECUTING" && run.status !== "WAITING") throw conflict(`run ${runId} is ${run.status}; only a running run takes safety checkpoints`, "INVALID_TRANSITION");
    const columns = await checkpointColumns(trx, engine, run, body.checkpoint, null);
    await trx("runs").where({ id: runId, lease_id: body.leaseId }).update(columns);
    return { previous: run.checkpoint_location };
  });
}
