import { inTransaction } from "../db/transaction.ts";
import type { Knex } from "knex";
import type { ClaimedRun, ContinueRun, WaitResult } from "../../schemas/index.ts";
import { sealForResume } from "../secrets/checkpoint-seals.ts";
import type { DataKeyRow } from "../secrets/data-keys.ts";
import { variablesForClaims } from "../secrets/run-variables.ts";
import { claimFreshRuns } from "../sql/claim-fresh-runs.ts";
import { lockClaimableRuns, type ClaimCandidate } from "../sql/claim-runs.ts";
import { startAttempts, type AttemptStart } from "../sql/start-attempts.ts";
import { canTransition } from "../../schemas/index.ts";
import { StasisError } from "../errors.ts";
import type { Engine } from "./context.ts";
import { newId } from "./ids.ts";
import { notify, notifyRunChanges } from "./notify.ts";
import { iso, type DeploymentRow, type RunRow } from "./rows.ts";
import { recoverRun } from "./recover-run.ts";
import { transitionRun } from "./transition.ts";

interface Resume {
  checkpointLocation: string;
  /** null: a checkpoint of the run while it ran (drain, safety checkpoint). */
  waitpointId: string | null;
  result: WaitResult | null;
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

/**
 * Deployed deployments never change (a trigger in the database refuses it), so the claim keeps the
 * ones it read: their manifests are most of a claim's bytes. Bounded; the oldest entry goes first.
 */
const deployedCache = new Map<string, DeploymentRow>();
const DEPLOYED_CACHE_MAX = 256;

async function deploymentsById(trx: Knex | Knex.Transaction, ids: string[]): Promise<Map<string, DeploymentRow>> {
  const out = new Map<string, DeploymentRow>();
  const missing = ids.filter((id) => {
    const cached = deployedCache.get(id);
    if (cached) out.set(id, cached);
    return !cached;
  });
  if (missing.length > 0) {
    for (const row of (await trx<DeploymentRow>("deployments").whereIn("id", missing)) as DeploymentRow[]) {
      out.set(row.id, row);
      if (row.status !== "DEPLOYED") continue;
      deployedCache.set(row.id, row);
      if (deployedCache.size > DEPLOYED_CACHE_MAX) deployedCache.delete(deployedCache.keys().next().value!);
    }
  }
  return out;
}

/**
 * Claims up to `limit` due runs for a runner, in a fixed number of statements however many runs:
 * lock the candidates with their environment and target deployment (claim-runs.ts), read the
 * deployments not cached, the environments' variables once per environment (none when the lock saw
 * that it has none), then move every run to EXECUTING and record its attempt with one
 * compare-and-set statement (start-attempts.ts). For a first attempt in an environment without
 * variables that is BEGIN, two statements and COMMIT. PENDING_VERSION decisions happen here, at dequeue.
 */
export async function claimRuns(engine: Engine, runnerId: string, limit: number, claimKey?: string, options: { resumeQueued?: boolean } = {}): Promise<ClaimedRun[]> {
  if (limit <= 0) return [];
  // Woken by a resume: the one statement would only lock it and let go (a statement and a commit for nothing,
  // 3–4 ms of a resume's 10–20 between the event and the claim: bench/suspend-resume, twelfth round).
  if (options.resumeQueued) return await claimFull(engine, runnerId, limit, claimKey);
  // The common case first, in one statement (claim-fresh-runs.ts); what it locked but may not take
  // (resumes, PENDING_VERSION, variables) goes through the full claim below.
  // A queue whose head the one statement cannot take (every run in an environment with variables,
  // say) would pay it for nothing on every claim: after such a miss, the next few claims go straight
  // to the full claim.
  const misses = freshMisses.get(engine) ?? 0;
  if (misses > 0) {
    freshMisses.set(engine, misses - 1);
    return await claimFull(engine, runnerId, limit, claimKey);
  }
  const fresh = await claimFresh(engine, runnerId, limit, claimKey);
  if (fresh.locked === fresh.claimed.length) return fresh.claimed;
  if (fresh.claimed.length === 0) freshMisses.set(engine, FRESH_SKIP_AFTER_MISS);
  return [...fresh.claimed, ...(await claimFull(engine, runnerId, limit - fresh.claimed.length, claimKey))];
}

const FRESH_SKIP_AFTER_MISS = 8;
/** Per server (engine): claims left that skip the one statement after it missed. */
const freshMisses = new WeakMap<Engine, number>();

async function claimFresh(engine: Engine, runnerId: string, limit: number, claimKey: string | undefined): Promise<{ locked: number; claimed: ClaimedRun[] }> {
  const leaseIds = Array.from({ length: limit }, () => leaseIdFor(claimKey));
  const { locked, moved } = await claimFreshRuns(engine.db, { runnerId, limit, leaseMs: engine.config.leaseMs, leaseIds, keyring: Boolean(engine.keyring) });
  if (moved.length === 0) return { locked, claimed: [] };
  const deployments = await deploymentsById(engine.db, [...new Set(moved.map((m) => m.deployment_id))]);
  const claimed = moved.map((m): ClaimedRun => {
    const d = deployments.get(m.deployment_id)!;
    return {
      runId: m.id,
      leaseId: m.lease_id,
      attempt: m.attempt_count,
      taskId: m.task_id,
      payload: m.payload ?? null,
      environment: m.environment_slug,
      environmentNumber: Number(m.environment_number),
      project: m.project_slug,
      deployment: { id: d.id, version: d.version, imageRef: d.image_ref ?? "", imageDigest: d.image_digest ?? "", manifest: d.manifest },
      deadline: m.deadline_at === null ? null : new Date(m.deadline_at).toISOString(),
      tags: m.tags ?? [],
      resume: null,
      env: {},
    };
  });
  await notifyRunChanges(engine.db, moved.map((m) => ({ env: m.environment_id, run: m.id, what: "EXECUTING" })));
  const deadlines = moved.filter((m) => m.deadline_at !== null).map((m) => new Date(m.deadline_at!).getTime());
  await notify(engine.db, "scheduler", Math.min(Date.now() + engine.config.leaseMs, ...deadlines));
  return { locked, claimed };
}

/** The full claim: every case, in one transaction. */
async function claimFull(engine: Engine, runnerId: string, limit: number, claimKey?: string): Promise<ClaimedRun[]> {
  if (limit <= 0) return [];
  return await inTransaction(engine.db, async (trx) => startClaims(engine, trx, runnerId, await lockClaimableRuns(trx, limit, runnerId), claimKey));
}

/**
 * Moves locked candidates to EXECUTING for `runnerId` in the caller's transaction and answers the
 * claims to hand out: the full claim's candidates, or a resume pushed to its holder's long poll
 * (resume-push.ts). A candidate without a deployment goes PENDING_VERSION; one whose variables or
 * checkpoint key do not decrypt waits a minute.
 */
export async function startClaims(engine: Engine, trx: Knex.Transaction, runnerId: string, candidates: ClaimCandidate[], claimKey?: string): Promise<ClaimedRun[]> {
  if (candidates.length === 0) return [];
  const deployments = await deploymentsById(trx, [...new Set(candidates.map((c) => c.target_deployment_id).filter((id): id is string => id !== null))]);
  const runnable: Array<{ run: ClaimCandidate; deployment: DeploymentRow }> = [];
  for (const run of candidates) {
    const deployment = run.target_deployment_id ? deployments.get(run.target_deployment_id) : undefined;
    if (deployment) runnable.push({ run, deployment });
    else await transitionRun(trx, run, "PENDING_VERSION", { expires_at: new Date(Date.now() + engine.config.pendingVersionTtlMs) });
  }
  // A resumed run whose attempt is still open continues that attempt (the process is restored).
  const attemptOf = (run: ClaimCandidate) => (run.attempt_open && run.resume ? run.attempt_count : run.attempt_count + 1);
  const variables = await variablesForClaims(
    trx,
    engine.keyring,
    runnable.map(({ run }) => ({ runId: run.id, projectId: run.project_id, environment: run.environment_slug, attempt: attemptOf(run), resume: run.resume !== null, hasVariables: run.has_variables, hasSnapshot: run.has_snapshot })),
  );

  const starts: AttemptStart[] = [];
  const prepared: Array<{ run: ClaimCandidate; deployment: DeploymentRow; attempt: number; leaseId: string; deadline: Date | null; env: Record<string, string>; resume: ClaimedResume | null }> = [];
  const deferred: ClaimCandidate[] = [];
  for (const { run, deployment } of runnable) {
    const resume = (run.resume as Resume | null) ?? null;
    const vars = variables.get(run.id);
    // A row that does not decrypt (altered, moved, or a key this server lacks) must not stop the
    // queue: this run waits a minute and the operator reads why.
    if (!vars || vars instanceof Error) {
      engine.logger.error({ runId: run.id, err: vars?.message }, "cannot decrypt the environment's variables; the run stays queued");
      deferred.push(run);
      continue;
    }
    // The checkpoint's key, unwrapped for this claim only; the same rule as the variables when it does not unwrap.
    let seal: ReturnType<typeof sealForResume> | null = null;
    if (resume) {
      try {
        seal = sealForResume(engine.keyring, run, resume.checkpointLocation, dataKeyRowOf(run));
      } catch (error) {
        engine.logger.error({ runId: run.id, err: (error as Error).message }, "cannot unwrap the checkpoint's key; the run stays queued");
      }
    }
    if (resume && !seal) {
      deferred.push(run);
      continue;
    }
    if (!canTransition(run.status, "EXECUTING")) throw new StasisError("INVALID_TRANSITION", 409, `run ${run.id} cannot go from ${run.status} to EXECUTING`);
    const budget = maxDurationMs(run, deployment);
    const deadline = budget === null ? null : new Date(Date.now() + Math.max(0, budget - Number(run.execution_ms)));
    const attempt = attemptOf(run);
    const leaseId = leaseIdFor(claimKey);
    const resumedWaitpoint = resume?.waitpointId ?? null;
    starts.push({ id: run.id, from: run.status, deployment_id: deployment.id, lease_id: leaseId, attempt_count: attempt, deadline_at: iso(deadline), max_duration_s: budget === null ? null : budget / 1000, new_attempt: attempt !== run.attempt_count, resumed_waitpoint: resumedWaitpoint });
    prepared.push({ run, deployment, attempt, leaseId, deadline, env: vars, resume: resume && seal ? { ...resume, sha256: seal.sha256, key: seal.key } : null });
  }
  if (deferred.length > 0) {
    await trx("runs")
      .whereIn("id", deferred.map((r) => r.id))
      .whereIn("status", ["QUEUED", "DELAYED", "RETRYING"])
      .update({ available_at: new Date(Date.now() + 60_000) });
  }
  const started = await startAttempts(trx, runnerId, engine.config.leaseMs, starts);
  const claimed: ClaimedRun[] = [];
  const begun = prepared.filter((p) => started.has(p.run.id));
  for (const p of begun) {
    claimed.push({
      runId: p.run.id,
      leaseId: p.leaseId,
      attempt: p.attempt,
      taskId: p.run.task_id,
      payload: p.run.payload ?? null,
      environment: p.run.environment_slug,
      environmentNumber: Number(p.run.environment_number),
      project: p.run.project_slug,
      deployment: {
        id: p.deployment.id,
        version: p.deployment.version,
        imageRef: p.deployment.image_ref ?? "",
        imageDigest: p.deployment.image_digest ?? "",
        manifest: p.deployment.manifest,
      },
      deadline: iso(p.deadline),
      tags: p.run.tags ?? [],
      resume: p.resume,
      // Decrypted here, sent only over the runner API: the runner keeps them in memory for this attempt.
      env: p.env,
    });
  }
  await notifyRunChanges(trx, begun.map((p) => ({ env: p.run.environment_id, run: p.run.id, what: "EXECUTING" })));
  // New leases and maxDuration deadlines: the scheduler recomputes if one is due before it would look anyway.
  if (claimed.length > 0) {
    const deadlines = begun.filter((p) => p.deadline).map((p) => p.deadline!.getTime());
    await notify(trx, "scheduler", Math.min(Date.now() + engine.config.leaseMs, ...deadlines));
  }
  return claimed;
}

/** `lease_<claimKey>_<random>`: the runs of one poll can be found by its key when its answer is lost. */
function leaseIdFor(claimKey: string | undefined): string {
  return claimKey ? newId(`lease_${claimKey}`) : newId("lease");
}

/**
 * Runs claimed for this runner by polls whose answer it never read (the server died mid-reply, the
 * connection broke): no process started them, so they are queued again now instead of when their
 * lease runs out. A poll that is still being answered when its key arrives here is not found; its
 * runs come back with the lease, as before.
 */
export async function returnUnansweredClaims(engine: Engine, runnerId: string, claimKeys: string[]): Promise<string[]> {
  if (claimKeys.length === 0) return [];
  return await inTransaction(engine.db, async (trx) => {
    const rows = (await trx("runs")
      .where({ runner_id: runnerId, status: "EXECUTING" })
      .whereRaw("lease_id LIKE 'lease\\_%' AND split_part(lease_id, '_', 2) = ANY(?::text[])", [claimKeys])
      .forUpdate()) as RunRow[];
    const returned: string[] = [];
    for (const run of rows) if (await recoverRun(trx, run, "unanswered")) returned.push(run.id);
    if (returned.length > 0) engine.logger.warn({ runnerId, runs: returned }, "a poll's answer never reached its runner; its runs are queued again");
    return returned;
  });
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
      const continued = await continueRun(trx, row, row.wait_id, row.wait_result);
      if (continued) out.push(continued);
    }
    return out;
  });
}

/** A WAITING run (locked) whose waitpoint completed, back to EXECUTING: the continue its runner's process gets; null if it was not WAITING. */
export async function continueRun(trx: Knex.Transaction, run: RunRow, waitpointId: string, result: WaitResult): Promise<ContinueRun | null> {
  const next = await transitionRun(trx, run, "EXECUTING", { execution_started_at: trx.fn.now(), deadline_at: executionDeadline(run), waitpoint_id: null });
  if (!next) return null;
  if (next.deadline_at) await notify(trx, "scheduler");
  return { runId: run.id, leaseId: run.lease_id!, waitpointId, result };
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

/** The project's data key row the candidate statement read beside a resume; null when the project has none. */
function dataKeyRowOf(run: ClaimCandidate): DataKeyRow | null {
  return run.data_master_key_id && run.data_wrapped_key ? { master_key_id: run.data_master_key_id, wrapped_key: run.data_wrapped_key } : null;
}
