import { inTransaction } from "../db/transaction.ts";
import type { z } from "zod";
import type { WaitResult, WaitSpec } from "../../schemas/index.ts";
import type { CreateWaitRequest, SuspendRequest } from "../../schemas/index.ts";
import { randomToken, sha256 } from "../auth.ts";
import { badRequest, conflict, notFound } from "../errors.ts";
import { childResults } from "./children.ts";
import { dueAfter } from "./duration.ts";
import type { Engine } from "./context.ts";
import { newId } from "./ids.ts";
import { executedMs, lockLeasedRun } from "./lease.ts";
import { findKeyedWait, requestWaitpointIdOf } from "./keyed-waits.ts";
import { notify, notifyResumeQueued } from "./notify.ts";
import { repeatedSuspend, repeatedWait } from "./repeated-reports.ts";
import { checkpointColumns } from "./running-checkpoints.ts";
import { resumeHoldColumns } from "./resume-hold.ts";
import type { RunRow, WaitpointRow } from "./rows.ts";
import { transitionRun } from "./transition.ts";

function resultOfCompleted(wp: WaitpointRow): WaitResult {
  return wp.result as WaitResult;
}

/**
 * The run asks to wait. The waitpoint is written first; if it is satisfied already (zero duration,
 * a date in the past, children all final, a request that arrived early) the result comes back at
 * once and the run keeps EXECUTING. Otherwise EXECUTING → WAITING and the execution clock stops.
 *
 * A keyed wait (`body.key`, sent by every current SDK) that this run created before — in an attempt
 * that died before it was checkpointed at it, or one that failed and is retried — is that same
 * waitpoint: its result, when it has one, comes back at once; while PENDING, the run waits on it
 * again (a duration keeps its first deadline). Input the server accepted for it is never lost.
 */
export async function createWait(engine: Engine, runId: string, body: z.infer<typeof CreateWaitRequest>): Promise<{ waitpointId: string; result: WaitResult | null }> {
  const spec: WaitSpec = body.spec;
  const out = await inTransaction(engine.db, async (trx) => {
    const run = await lockLeasedRun(trx, runId, body.leaseId);
    const repeated = await repeatedWait(trx, run, spec);
    if (repeated) return { ...repeated, reused: true };
    if (run.status !== "EXECUTING") throw conflict(`run ${runId} is ${run.status}; only an EXECUTING run can wait`, "INVALID_TRANSITION");
    const now = Date.now();
    let waitpoint: WaitpointRow;
    let immediate: WaitResult | null = null;
    const earlier = body.key && spec.kind !== "request" ? await findKeyedWait(trx, engine, run, body.key, spec) : null;

    if (spec.kind === "request") {
      const id = await requestWaitpointIdOf(trx, sha256(spec.token));
      const existing = id ? ((await trx("waitpoints").where({ id, run_id: runId }).forUpdate().first()) as WaitpointRow | undefined) : undefined;
      if (!existing) throw notFound("request token is unknown for this run; create it with request-tokens first", "spec.token");
      waitpoint = existing;
      if (existing.status !== "PENDING") immediate = resultOfCompleted(existing);
    } else if (earlier) {
      waitpoint = earlier;
      if (earlier.status !== "PENDING") immediate = resultOfCompleted(earlier);
    } else {
      const row: Record<string, unknown> = { id: newId("wp"), environment_id: run.environment_id, run_id: runId, kind: spec.kind, spec: JSON.stringify(spec), wait_key: body.key ?? null };
      if (spec.kind === "duration") {
        if (spec.ms === 0) immediate = { kind: "duration" };
        row.due_at = dueAfter(spec.ms, "spec.ms", now);
      } else if (spec.kind === "until") {
        const date = new Date(spec.date);
        if (date.getTime() <= now) immediate = { kind: "duration" };
        row.due_at = date;
      } else if (spec.kind === "event") {
        row.event_name = spec.event;
        row.filter = spec.filter ? JSON.stringify(spec.filter) : null;
        if (spec.timeoutMs) row.due_at = dueAfter(spec.timeoutMs, "spec.timeoutMs", now);
      } else if (spec.kind === "runs") {
        const found = await trx("runs").whereIn("id", spec.runIds).where({ environment_id: run.environment_id }).pluck("id");
        const missing = spec.runIds.filter((id) => !found.includes(id));
        if (missing.length) throw badRequest(`spec.runIds: unknown run ${missing.join(", ")}`, "spec.runIds");
        row.child_run_ids = spec.runIds;
        const results = await childResults(trx, spec.runIds, true);
        if (results) immediate = { kind: "runs", results };
      }
      if (immediate) Object.assign(row, { status: "COMPLETED", result: JSON.stringify(immediate), completed_at: trx.fn.now(), due_at: null });
      [waitpoint] = await trx("waitpoints").insert(row).returning("*");
    }

    if (immediate) return { waitpointId: waitpoint.id, result: immediate, reused: earlier !== null };
    await transitionRun(trx, run, "WAITING", { waitpoint_id: waitpoint.id, execution_ms: executedMs(run), execution_started_at: null, deadline_at: null });
    if (waitpoint.due_at) await notify(trx, "scheduler", waitpoint.due_at);
    return { waitpointId: waitpoint.id, result: null, reused: earlier !== null };
  });
  engine.logger.debug({ runId, kind: spec.kind, key: body.key, waitpointId: out.waitpointId, immediate: out.result !== null, reused: out.reused }, "wait created");
  return { waitpointId: out.waitpointId, result: out.result };
}

/**
 * A token for `wait.forRequest`. The waitpoint exists (PENDING) from now on, so a request that
 * arrives before the run starts waiting is kept and handed over when it does. Reached again under
 * the same key (a re-executed attempt), the same waitpoint gets one more token: only hashes are
 * stored, so the first URL cannot be handed out again, but it still works.
 */
export async function createRequestToken(engine: Engine, runId: string, body: { leaseId: string; timeoutMs?: number; key?: string }): Promise<{ token: string; url: string }> {
  const token = randomToken(32);
  const dueAt = body.timeoutMs ? dueAfter(body.timeoutMs, "timeoutMs") : null;
  await inTransaction(engine.db, async (trx) => {
    const run = await lockLeasedRun(trx, runId, body.leaseId);
    const earlier = body.key ? await findKeyedWait(trx, engine, run, body.key, { kind: "request" }) : null;
    if (earlier) {
      await trx("waitpoint_tokens").insert({ token_hash: sha256(token), waitpoint_id: earlier.id });
      return;
    }
    await trx("waitpoints").insert({
      id: newId("wp"),
      environment_id: run.environment_id,
      run_id: runId,
      kind: "request",
      spec: JSON.stringify({ kind: "request" }),
      token_hash: sha256(token),
      wait_key: body.key ?? null,
      due_at: dueAt,
    });
    if (dueAt) await notify(trx, "scheduler", dueAt);
  });
  return { token, url: `${engine.config.publicUrl}/api/v1/waitpoints/requests/${token}` };
}

/**
 * The runner froze the waiting process. WAITING → SUSPENDED with the checkpoint's location; if the
 * waitpoint completed meanwhile, straight to QUEUED with `resume`. The waitpoint row is locked
 * before the run (the order completion uses), so the two cannot miss each other.
 */
export async function suspendRun(engine: Engine, runId: string, body: z.infer<typeof SuspendRequest>): Promise<{ status: "SUSPENDED" | "QUEUED" }> {
  return await inTransaction(engine.db, async (trx) => {
    const wp = (await trx("waitpoints").where({ id: body.waitpointId }).forUpdate().first()) as WaitpointRow | undefined;
    const repeated = await repeatedSuspend(trx, runId, body.checkpoint.location);
    if (repeated) return repeated;
    const run: RunRow = await lockLeasedRun(trx, runId, body.leaseId);
    if (!wp || run.waitpoint_id !== wp.id) throw conflict(`run ${runId} is not waiting on waitpoint ${body.waitpointId}`, "NOT_WAITING");
    if (run.status !== "WAITING") throw conflict(`run ${runId} is ${run.status}; only a WAITING run can be suspended`, "INVALID_TRANSITION");
    const common = { ...(await checkpointColumns(trx, engine, run, body.checkpoint, wp.id, body.keptLocally)), runner_id: null, lease_id: null, lease_expires_at: null };
    // What the run's timeline shows of this wait: frozen, how big, when.
    await trx("waitpoints").where({ id: wp.id }).update({ suspended_at: trx.fn.now(), checkpoint_bytes: body.checkpoint.sizeBytes });
    if (wp.status === "PENDING") {
      await transitionRun(trx, run, "SUSPENDED", common);
      return { status: "SUSPENDED" as const };
    }
    await transitionRun(trx, run, "QUEUED", {
      ...common,
      resume: JSON.stringify({ checkpointLocation: body.checkpoint.location, waitpointId: wp.id, result: wp.result }),
      available_at: trx.fn.now(),
      ...(await resumeHoldColumns(trx, common)),
    });
    await notifyResumeQueued(trx);
    return { status: "QUEUED" as const };
  });
}
