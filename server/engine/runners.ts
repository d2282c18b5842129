import { inTransaction } from "../db/transaction.ts";
import { z } from "zod";
import type { PollResponse, RegisterRunnerRequest } from "../../schemas/index.ts";
import { notFound } from "../errors.ts";
import { extendLeases } from "../sql/heartbeat.ts";
import { pendingWork } from "../sql/runner-pending-work.ts";
import { claimRuns, returnUnansweredClaims, takeCheckpointDeletions, takeContinues, takeStops } from "./claim.ts";
import type { Engine } from "./context.ts";
import { newId } from "./ids.ts";
import { recoverRun } from "./recover-run.ts";
import { sleepForPushes } from "./resume-push.ts";
import type { RunRow } from "./rows.ts";

export async function registerRunner(engine: Engine, body: z.infer<typeof RegisterRunnerRequest>) {
  const runnerId = newId("runner");
  await engine.db("runners").insert({ id: runnerId, name: body.name, capacity: body.capacity, checkpoints: body.checkpoints, workload: body.workload, checkpoint_site: body.checkpointSite ?? null });
  const threshold = engine.config.suspendThresholdMs;
  return { runnerId, heartbeatIntervalMs: engine.config.heartbeatIntervalMs, leaseMs: engine.config.leaseMs, ...(threshold !== undefined ? { suspendThresholdMs: threshold } : {}) };
}

/** When this process last wrote each runner's `last_seen_at` (runner rows are never deleted). */
const touchedAt = new Map<string, number>();
const TOUCH_EVERY_MS = 1000;
const TOUCHED_MAX = 10_000;

/**
 * Checks the runner is registered and records that it was seen — at most once a second per runner
 * and server process: every poll and heartbeat wrote the row before, one UPDATE and one durable
 * commit in front of each claim (a burst's quick polls come many times a second). Nothing reads
 * `last_seen_at` finer than that; leases, not this column, decide whether a runner's runs are lost.
 */
async function touchRunner(engine: Engine, runnerId: string): Promise<void> {
  const last = touchedAt.get(runnerId);
  if (last !== undefined && Date.now() - last < TOUCH_EVERY_MS) return;
  const updated = await engine.db("runners").where({ id: runnerId }).update({ last_seen_at: engine.db.fn.now() });
  if (updated === 0) throw notFound(`runner ${runnerId} is not registered; register again`, "runnerId");
  if (touchedAt.size >= TOUCHED_MAX) touchedAt.clear();
  touchedAt.set(runnerId, Date.now());
}

export type PollResult = PollResponse & { deleteCheckpoints?: string[] };

/** The most runs one poll claims: a runner with more free slots gets the rest in its next polls. */
const MAX_CLAIM_BATCH = 500;

/**
 * Long-poll: look once, and if there is nothing for this runner, sleep until a NOTIFY says
 * something changed (any replica) or the wait is over, then look again.
 */
export async function pollRunner(engine: Engine, body: { runnerId: string; freeSlots: number; waitMs: number; claimKey?: string; unanswered?: string[] }, signal?: AbortSignal): Promise<PollResult> {
  await touchRunner(engine, body.runnerId);
  await returnUnansweredClaims(engine, body.runnerId, body.unanswered ?? []);
  const deadline = Date.now() + body.waitMs;
  // Count wake-ups from before we look: one that lands while the queries run must not be slept through.
  let wakes = 0;
  const onWake = () => void wakes++;
  // A wake about a resume (notify.ts): the claim after it goes straight to the full claim, the one that takes resumes.
  let resumes = 0;
  let resumesSeen = 0;
  const onResume = () => void resumes++;
  engine.listener.events.on("runs", onWake);
  engine.listener.events.on("resumes", onResume);
  try {
    for (;;) {
      // A runner that hung up (drain, shutdown) gets nothing more: no claim, no continue taken for it, and no
      // statement after it left — a server closing behind it would hold that statement until the pool's timeout.
      if (signal?.aborted) return { runs: [], continues: [], stops: [] };
      const seen = wakes;
      const resumeQueued = resumes > resumesSeen;
      resumesSeen = resumes;
      // The claim and the side looks at once, each on its own pooled connection: in sequence they were a dozen
      // round trips between a trigger's wake and the claim's answer (bench/trigger-latency/start-trace.ts). They
      // touch different rows (stops and continues: runs this runner holds; the claim: queued runs, SKIP LOCKED).
      // The side looks are one read first (runner-pending-work.ts), and only what it found is taken.
      const [runs, [stops, continues, deleteCheckpoints]] = await Promise.all([
        // A runner that hung up meanwhile would never see what we claim for it.
        signal?.aborted ? [] : claimRuns(engine, body.runnerId, Math.min(body.freeSlots, MAX_CLAIM_BATCH), body.claimKey, { resumeQueued }),
        pendingWork(engine.db, body.runnerId).then((pending) =>
          Promise.all([
            pending.stops ? takeStops(engine, body.runnerId) : [],
            pending.continues ? takeContinues(engine, body.runnerId) : [],
            pending.checkpointDeletions ? takeCheckpointDeletions(engine) : [],
          ]),
        ),
      ]);
      const left = deadline - Date.now();
      if (stops.length || continues.length || runs.length || deleteCheckpoints.length || left <= 0 || signal?.aborted) {
        return { runs, continues, stops, ...(deleteCheckpoints.length ? { deleteCheckpoints } : {}) };
      }
      if (wakes !== seen) continue;
      // Asleep, the transaction that ends a wait of this runner's may hand it the continue, or the resume whose dump it keeps (resume-push.ts).
      const sleep = sleepForPushes(engine, body.runnerId, Math.min(body.freeSlots, MAX_CLAIM_BATCH), body.claimKey);
      const nap = new AbortController();
      await Promise.race([engine.listener.waitFor("runs", left, signal ? AbortSignal.any([signal, nap.signal]) : nap.signal), sleep.pushed]);
      nap.abort();
      const pushed = await sleep.wake();
      if (pushed.runs.length > 0 || pushed.continues.length > 0) return { ...pushed, stops: [] };
    }
  } finally {
    engine.listener.events.off("runs", onWake);
    engine.listener.events.off("resumes", onResume);
  }
}

export async function heartbeatRunner(engine: Engine, body: { runnerId: string; leases: Array<{ runId: string; leaseId: string }> }) {
  await touchRunner(engine, body.runnerId);
  const lost = await extendLeases(engine.db, body.runnerId, body.leases, engine.config.leaseMs);
  return { lost, leaseMs: engine.config.leaseMs };
}

/** Drain: the runner gives its runs back; each is queued as a new attempt (from its checkpoint if any). */
export async function releaseRuns(engine: Engine, body: { runnerId: string; leases: Array<{ runId: string; leaseId: string }> }): Promise<{ released: string[] }> {
  const released: string[] = [];
  for (const lease of body.leases) {
    await inTransaction(engine.db, async (trx) => {
      const run = (await trx("runs").where({ id: lease.runId, lease_id: lease.leaseId, runner_id: body.runnerId }).forUpdate().first()) as RunRow | undefined;
      if (run && (await recoverRun(trx, run, "released"))) released.push(run.id);
    });
  }
  return { released };
}
