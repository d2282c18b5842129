import { inTransaction } from "../db/transaction.ts";
import type { Knex } from "knex";
import { canTransition, type CompleteAttemptRequest, type CompleteAttemptsRequest, type CompleteAttemptsResponse, type RetryOptions } from "../../schemas/index.ts";
import { conflict, StasisError } from "../errors.ts";
import { completeLeasedRun, completeLeasedRuns, type CompletedRow } from "../sql/complete-attempt.ts";
import { redactRunResult, runHoldsTokens } from "../connections/redact-result.ts";
import type { Keyring } from "../secrets/keyring.ts";
import type { Engine } from "./context.ts";
import { executedMs, lockLeasedRun } from "./lease.ts";
import { notify } from "./notify.ts";
import { DEFAULT_RETRY, retryDelayMs } from "./retry-backoff.ts";
import type { RunRow } from "./rows.ts";
import { assertPayloadSize } from "./trigger-run.ts";
import { runFinalHooks, transitionRun } from "./transition.ts";

export async function retryOptionsFor(trx: Engine["db"], run: RunRow): Promise<RetryOptions> {
  if (!run.deployment_id) return DEFAULT_RETRY;
  const d = await trx("deployments").where({ id: run.deployment_id }).first("manifest");
  const entry = d?.manifest?.tasks?.find((t: { id: string }) => t.id === run.task_id);
  return { ...DEFAULT_RETRY, ...(entry?.retry ?? {}) };
}

export function maxAttemptsOf(run: RunRow, retry: RetryOptions): number {
  return run.max_attempts ?? retry.maxAttempts;
}

/** States in which the attempt a lease ran has ended: a repeated report of that end gets the same answer. */
const ENDED = new Set(["COMPLETED", "FAILED", "RETRYING", "CANCELED", "TIMED_OUT"]);

/**
 * The runner reports how an attempt ended. Success → COMPLETED. Failure → RETRYING after the
 * task's backoff while attempts remain (and the error does not say doNotRetry), else FAILED.
 * Idempotent per lease: the runner retries a report whose answer it did not get, so a repeat after
 * the attempt ended (the lease is still on the row — RETRYING keeps it until the next claim) is
 * answered with the state the run is in, not refused.
 */
export async function completeAttempt(engine: Engine, runId: string, body: CompleteAttemptRequest): Promise<{ status: string; retryAt: string | null }> {
  if (body.result.ok) assertPayloadSize(body.result.output, "result.output");
  return await inTransaction(engine.db, (trx) => completeInTransaction(trx, engine.keyring, runId, body));
}

type ItemResult = CompleteAttemptsResponse["results"][number];

/**
 * Several attempts' ends in one transaction (one commit, one WAL flush, instead of one per run).
 * An item refused the way the single route refuses it (lease lost, not found, not EXECUTING, payload
 * too large) gets that error in its place and the others go on: those refusals are decided before
 * the item writes anything. Any other error (the database's) fails the whole call, which the runner
 * retries; every item is idempotent per lease, so a retried batch answers as the first would have.
 */
export async function completeAttempts(engine: Engine, items: CompleteAttemptsRequest["items"]): Promise<ItemResult[]> {
  return await inTransaction(engine.db, async (trx) => {
    const results: Array<ItemResult | null> = items.map(() => null);
    const refuse = (i: number, error: unknown) => {
      if (!(error instanceof StasisError)) throw error;
      results[i] = { runId: items[i].runId, ok: false, error: { status: error.status, code: error.code, message: error.message } };
    };
    // Successful ends of distinct runs in one statement; anything else (and any it did not move) item by item below.
    const quick: number[] = [];
    const seen = new Set<string>();
    items.forEach((item, i) => {
      if (!item.result.ok || seen.has(item.runId)) return;
      seen.add(item.runId);
      try {
        assertPayloadSize(item.result.output, "result.output");
        quick.push(i);
      } catch (error) {
        refuse(i, error);
      }
    });
    if (quick.length > 1 && canTransition("EXECUTING", "COMPLETED")) {
      const done = await completeLeasedRuns(
        trx,
        quick.map((i) => ({ runId: items[i].runId, leaseId: items[i].leaseId, output: (items[i].result as { output: unknown }).output })),
      );
      await redactCompleted(trx, engine.keyring, done);
      await runFinalHooks(trx, done);
      const moved = new Set(done.map((r) => r.id));
      for (const i of quick) if (moved.has(items[i].runId)) results[i] = { runId: items[i].runId, ok: true, status: "COMPLETED", retryAt: null };
    }
    for (const [i, { runId, ...body }] of items.entries()) {
      if (results[i]) continue;
      try {
        if (body.result.ok) assertPayloadSize(body.result.output, "result.output");
        results[i] = { runId, ok: true, ...(await completeInTransaction(trx, engine.keyring, runId, body)) };
      } catch (error) {
        refuse(i, error);
      }
    }
    return results as ItemResult[];
  });
}

/**
 * The output of a completed run that was handed connection tokens, with those tokens redacted (stored
 * and in the row the final hooks hand to a waiting parent). Rare: most runs hold none.
 */
async function redactCompleted(trx: Knex.Transaction, keyring: Keyring | null | undefined, rows: CompletedRow[]): Promise<void> {
  for (const row of rows) {
    if (!row.holds_connection_tokens) continue;
    const output = await redactRunResult(trx, keyring, row, row.output);
    if (JSON.stringify(output) === JSON.stringify(row.output)) continue;
    await trx("runs").where({ id: row.id }).update({ output: JSON.stringify(output ?? null) });
    row.output = output;
  }
}

async function completeInTransaction(trx: Knex.Transaction, keyring: Keyring | null | undefined, runId: string, body: CompleteAttemptRequest): Promise<{ status: string; retryAt: string | null }> {
  if (body.result.ok && canTransition("EXECUTING", "COMPLETED")) {
    // The common end in one statement; the final hooks (parents' waitpoints, pending waits) in the same transaction.
    const done = await completeLeasedRun(trx, runId, body.leaseId, body.result.output);
    if (done) {
      await redactCompleted(trx, keyring, [done]);
      await runFinalHooks(trx, [done]);
      return { status: "COMPLETED", retryAt: null };
    }
  }
  const run = await lockLeasedRun(trx, runId, body.leaseId);
  if (ENDED.has(run.status)) return { status: run.status, retryAt: run.status === "RETRYING" ? run.available_at.toISOString() : null };
  if (run.status !== "EXECUTING") throw conflict(`run ${runId} is ${run.status}, not EXECUTING; it cannot complete`, "INVALID_TRANSITION");
  const common = { execution_ms: executedMs(run), execution_started_at: null, deadline_at: null, lease_expires_at: null };
  const holdsTokens = await runHoldsTokens(trx, runId);
  if (body.result.ok) {
    const output = holdsTokens ? await redactRunResult(trx, keyring, run, body.result.output) : body.result.output;
    await transitionRun(trx, run, "COMPLETED", { ...common, output: JSON.stringify(output ?? null), error: null });
    await trx("run_attempts").where({ run_id: runId, number: run.attempt_count }).update({ status: "COMPLETED", ended_at: trx.fn.now() });
    return { status: "COMPLETED", retryAt: null };
  }
  const error = holdsTokens ? await redactRunResult(trx, keyring, run, body.result.error) : body.result.error;
  await trx("run_attempts").where({ run_id: runId, number: run.attempt_count }).update({ status: "FAILED", error: JSON.stringify(error), ended_at: trx.fn.now() });
  const retry = await retryOptionsFor(trx, run);
  if (error.doNotRetry || run.attempt_count >= maxAttemptsOf(run, retry)) {
    await transitionRun(trx, run, "FAILED", { ...common, error: JSON.stringify(error) });
    return { status: "FAILED", retryAt: null };
  }
  const retryAt = new Date(Date.now() + retryDelayMs(retry, run.attempt_count));
  await transitionRun(trx, run, "RETRYING", {
    ...common,
    error: JSON.stringify(error),
    available_at: retryAt,
    runner_id: null,
    checkpoint_location: null,
    checkpoint_sha256: null,
    checkpoint_workload: null,
    checkpoint_runner_id: null,
    checkpoint_key: null,
    checkpoint_waitpoint_id: null,
  });
  await notify(trx, "scheduler", retryAt);
  return { status: "RETRYING", retryAt: retryAt.toISOString() };
}
