import { inTransaction } from "../db/transaction.ts";
import type { Knex } from "knex";
import type { ClaimedRun, ContinueRun, WaitResult } from "../../schemas/index.ts";
import { sealForResume } from "../secrets/checkpoint-seals.ts";
import { variablesForClaim } from "../secrets/run-variables.ts";
import { lockClaimableRuns } from "../sql/claim-runs.ts";
import type { Engine } from "./context.ts";
import { newId } from "./ids.ts";
import { notify } from "./notify.ts";
import { iso, type DeploymentRow, type RunRow } from "./rows.ts";
import { transitionRun } from "./transition.ts";

interface Resume {
  checkpointLocation: string;
  waitpointId: string;
  result: WaitResult;
}

type ClaimedResume = NonNullable<ClaimedRun["resume"]>;

function maxDurationMs(run: RunRow, deployment: DeploymentRow): number | null {
  const entry = deployment.manifest?.tasks?.find((t: { id: string }) => t.id === run.task_id);
  const seconds = run.max_duration_s ?? entry?.maxDuration ?? null;
  return seconds ? seconds * 1000 : null;
}

/** maxDuration counts execution only: the clock restarts with what is left of the budget. */
export function executionDeadline(run: Pick<RunRow, "max_duration_s" | "execution_ms">): Date | null {
  if (!run.max_duration_s) return null;
  return new Date(Date.now() + Math.max(0, run.max_duration_s * 1000 - Number(run.execution_ms)));
}

/** Claims up to `limit` due runs for a runner. PENDING_VERSION decisions happen here, at dequeue. */
export async function claimRuns(engine: Engine, runnerId: string, limit: number): Promise<ClaimedRun[]> {
  if (limit <= 0) return [];
  return await inTransaction(engine.db, async (trx) => {
    const candidates = await lockClaimableRuns(trx, limit);
    const claimed: ClaimedRun[] = [];
    for (const run of candidates) {
      const deployment = await deploymentFor(trx, run);
      if (!deployment) {
        await transitionRun(trx, run, "PENDING_VERSION", { expires_at: new Date(Date.now() + engine.config.pendingVersionTtlMs) });
        continue;
      }
      const env = await trx("environments as e").join("projects as p", "p.id", "e.project_id").where("e.id", run.environment_id).first("e.slug as environment", "e.number as environment_number", "p.slug as project", "p.id as project_id");
      const open = await trx("run_attempts").where({ run_id: run.id, number: run.attempt_count, status: "EXECUTING" }).first();
      const resume = (run.resume as Resume | null) ?? null;
      const attempt = open && resume ? run.attempt_count : run.attempt_count + 1;
      const input = { runId: run.id, projectId: env.project_id, environment: env.environment, attempt, resume: resume !== null };
      const variables = await variablesForClaim(trx, engine.keyring, input).catch((error: unknown) => {
        // A row that does not decrypt (altered, moved, or a key this server lacks) must not stop the
        // queue: this run waits a minute and the operator reads why.
        engine.logger.error({ runId: run.id, err: (error as Error).message }, "cannot decrypt the environment's variables; the run stays queued");
        return null;
      });
      // The checkpoint's key, unwrapped for this claim only; the same rule as the variables when it does not unwrap.
      const seal = resume
        ? await sealForResume(trx, engine.keyring, run, resume.checkpointLocation).catch((error: unknown) => {
            engine.logger.error({ runId: run.id, err: (error as Error).message }, "cannot unwrap the checkpoint's key; the run stays queued");
            return null;
          })
        : null;
      if (!variables || (resume && !seal)) {
        await trx("runs").where({ id: run.id, status: run.status }).update({ available_at: new Date(Date.now() + 60_000) });
        continue;
      }
      const budget = maxDurationMs(run, deployment);
      const deadline = budget === null ? null : new Date(Date.now() + Math.max(0, budget - Number(run.execution_ms)));
      const leaseId = newId("lease");
      const next = await transitionRun(trx, run, "EXECUTING", {
        deployment_id: deployment.id,
        runner_id: runnerId,
        lease_id: leaseId,
        lease_expires_at: new Date(Date.now() + engine.config.leaseMs),
        attempt_count: attempt,
        started_at: run.started_at ?? trx.fn.now(),
        execution_started_at: trx.fn.now(),
        deadline_at: deadline,
        max_duration_s: budget === null ? null : budget / 1000,
        waitpoint_id: null,
        resume: null,
        stop_pending: false,
        stop_reason: null,
      });
      if (!next) continue;
      if (attempt === run.attempt_count) {
        await trx("run_attempts").where({ run_id: run.id, number: attempt }).update({ runner_id: runnerId });
      } else {
        await trx("run_attempts").insert({ run_id: run.id, number: attempt, status: "EXECUTING", runner_id: runnerId });
      }
      claimed.push({
        runId: run.id,
        leaseId,
        attempt,
        taskId: run.task_id,
        payload: run.payload ?? null,
        environment: env.environment,
        environmentNumber: Number(env.environment_number),
        project: env.project,
        deployment: {
          id: deployment.id,
          version: deployment.version,
          imageRef: deployment.image_ref ?? "",
          imageDigest: deployment.image_digest ?? "",
          manifest: deployment.manifest,
        },
        deadline: iso(deadline),
        tags: run.tags ?? [],
        resume: resume && seal ? ({ ...resume, sha256: seal.sha256, key: seal.key } satisfies ClaimedResume) : null,
        // Decrypted here, sent only over the runner API: the runner keeps them in memory for this attempt.
        env: variables,
      });
    }
    // New leases and maxDuration deadlines: the scheduler recomputes when it next has to look.
    if (claimed.length > 0) await notify(trx, "scheduler");
    return claimed;
  });
}

/** The run's own deployment, else the environment's promoted one if it has the task. */
async function deploymentFor(trx: Knex.Transaction, run: RunRow): Promise<DeploymentRow | null> {
  if (run.deployment_id) return (await trx<DeploymentRow>("deployments").where({ id: run.deployment_id }).first()) ?? null;
  const promoted = await trx("environments as e").join("deployments as d", "d.id", "e.promoted_deployment_id").where("e.id", run.environment_id).first("d.*");
  if (!promoted || !(promoted as DeploymentRow).tasks.includes(run.task_id)) return null;
  return promoted as DeploymentRow;
}

/** WAITING runs of this runner whose waitpoint completed: back to EXECUTING, the process continues. */
export async function takeContinues(engine: Engine, runnerId: string): Promise<ContinueRun[]> {
  return await inTransaction(engine.db, async (trx) => {
    const rows = await trx("runs as r")
      .join("waitpoints as w", "w.id", "r.waitpoint_id")
      .where({ "r.runner_id": runnerId, "r.status": "WAITING" })
      .whereNot("w.status", "PENDING")
      .forUpdate("r")
      .skipLocked()
      .select("r.*", "w.result as wait_result", "w.id as wait_id");
    const out: ContinueRun[] = [];
    for (const row of rows as Array<RunRow & { wait_result: WaitResult; wait_id: string }>) {
      const next = await transitionRun(trx, row, "EXECUTING", {
        execution_started_at: trx.fn.now(),
        deadline_at: executionDeadline(row),
        waitpoint_id: null,
      });
      if (next && next.deadline_at) await notify(trx, "scheduler");
      if (next) out.push({ runId: row.id, leaseId: row.lease_id!, waitpointId: row.wait_id, result: row.wait_result });
    }
    return out;
  });
}

/** Runs this runner holds that were canceled or timed out. */
export async function takeStops(engine: Engine, runnerId: string): Promise<Array<{ runId: string; reason: string }>> {
  const rows = await engine.db("runs").where({ runner_id: runnerId, stop_pending: true }).update({ stop_pending: false }).returning(["id", "stop_reason", "status"]);
  return rows.map((r) => ({ runId: r.id, reason: r.stop_reason ?? r.status }));
}

/** Checkpoints of canceled suspended runs, for a runner with access to the store to delete. */
export async function takeCheckpointDeletions(engine: Engine, limit = 100): Promise<string[]> {
  const result = await engine.db.raw(
    `DELETE FROM checkpoints_to_delete WHERE id IN (SELECT id FROM checkpoints_to_delete ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING location`,
    [limit],
  );
  return (result.rows as Array<{ location: string }>).map((r) => r.location);
}
