// The mix of runs (planned from the seed), triggered at a steady pace with retries while the
// server or PostgreSQL is down (an idempotency key makes a retried trigger one run), and the event
// sender: once a run records "waiting-event", it sends `chaos.<runId>` until the server says the
// event matched a waiting run, and records which event id the server accepted for which run.
import { callStasisApi } from "../../builder/index.ts";
import type { Ledger } from "./ledger-service.ts";
import type { Rng } from "./prng.ts";

export type RunKind = "noop" | "flaky" | "sleeper" | "parent" | "event";
export const RUN_KIND_WEIGHTS: Record<RunKind, number> = { noop: 0.2, flaky: 0.15, sleeper: 0.3, parent: 0.1, event: 0.25 };

export interface PlannedRun {
  index: number;
  kind: RunKind;
  task: string;
  payload: Record<string, unknown>;
  /** ms after the start of the load. */
  at: number;
}

export interface WorkloadOptions {
  runs: number;
  /** Runs are spread evenly over this window. */
  spreadMs: number;
  /** Longest single wait.for (ms); 30 s in the long run. */
  maxWaitMs: number;
  eventTimeoutSeconds: number;
  /** Longest delay between a run starting to wait and its event being sent. */
  maxEventDelayMs: number;
}

export function planRuns(rng: Rng, ledger: string, options: WorkloadOptions): PlannedRun[] {
  const plan: PlannedRun[] = [];
  for (let i = 0; i < options.runs; i++) {
    const kind = rng.weighted(RUN_KIND_WEIGHTS);
    const at = Math.round((i * options.spreadMs) / Math.max(1, options.runs));
    const waitMs = () => rng.int(1000, options.maxWaitMs);
    const payload: Record<string, unknown> = { ledger };
    let task = `chaos-${kind}`;
    if (kind === "flaky") payload.failTimes = rng.int(1, 2);
    if (kind === "sleeper") payload.waits = Array.from({ length: rng.int(1, 3) }, waitMs);
    if (kind === "parent") Object.assign(payload, { batch: rng.int(2, 3), childWaitMs: rng.next() < 0.5 ? 0 : waitMs() });
    if (kind === "event") payload.timeoutSeconds = options.eventTimeoutSeconds;
    if (kind === "noop") task = "chaos-noop";
    plan.push({ index: i, kind, task, payload, at });
  }
  return plan;
}

export interface TriggeredRun extends PlannedRun {
  runId: string;
  triggeredAt: number;
}

export interface AcceptedEvent {
  runId: string;
  eventId: string;
  acceptedAt: number;
  matchedWaitpoints: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Calls the API, retrying connection failures and 5xx until `until` (the server or PostgreSQL may be down). */
async function callRetrying<T>(apiUrls: string[], apiKey: string, method: string, path: string, body: unknown, until: () => boolean): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await callStasisApi<T>(apiUrls[i % apiUrls.length], apiKey, method, path, body);
    } catch (error) {
      const status = (error as { status?: number }).status;
      if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) throw error;
      if (until()) throw error;
      await sleep(Math.min(2000, 200 * (i + 1)));
    }
  }
}

export function createWorkload(opts: { apiUrls: string[]; apiKey: string; ledger: Ledger; rng: Rng; seed: number; maxEventDelayMs: number; stopped: () => boolean }) {
  const triggered: TriggeredRun[] = [];
  const triggerErrors: string[] = [];
  const accepted = new Map<string, AcceptedEvent>();
  const eventSendAttempts = { sent: 0, unmatched: 0, failed: 0 };
  const waiting = new Map<string, number>(); // runId → when to send
  let attemptCounter = 0;

  opts.ledger.onRecord((record) => {
    if (record.step !== "waiting-event" || accepted.has(record.runId) || waiting.has(record.runId)) return;
    waiting.set(record.runId, Date.now() + opts.rng.int(500, opts.maxEventDelayMs));
  });

  const sendEvents = async () => {
    while (!opts.stopped()) {
      const now = Date.now();
      const due = [...waiting].filter(([, at]) => at <= now).map(([runId]) => runId);
      await Promise.all(due.map(async (runId) => {
        waiting.delete(runId);
        const eventId = `ev-${runId}-${++attemptCounter}`;
        try {
          eventSendAttempts.sent++;
          const response = await callRetrying<{ id: string; duplicate: boolean; matchedWaitpoints: number }>(opts.apiUrls, opts.apiKey, "POST", "/api/v1/events", { event: `chaos.${runId}`, payload: { for: runId }, id: eventId }, opts.stopped);
          if (response.matchedWaitpoints > 0) {
            accepted.set(runId, { runId, eventId: response.id, acceptedAt: Date.now(), matchedWaitpoints: response.matchedWaitpoints });
            return;
          }
          eventSendAttempts.unmatched++;
        } catch {
          eventSendAttempts.failed++;
        }
        // Not matched yet (the wait is not registered) or failed: try again shortly, with a new id.
        if (!accepted.has(runId)) waiting.set(runId, Date.now() + 1000);
      }));
      await sleep(200);
    }
  };

  const trigger = async (plan: PlannedRun[]) => {
    const start = Date.now();
    const pending: Array<Promise<void>> = [];
    for (const run of plan) {
      const wait = start + run.at - Date.now();
      if (wait > 0) await sleep(wait);
      pending.push((async () => {
        try {
          const { id } = await callRetrying<{ id: string }>(opts.apiUrls, opts.apiKey, "POST", `/api/v1/tasks/${run.task}/trigger`, { payload: run.payload, options: { idempotencyKey: `chaos-${opts.seed}-${run.index}` } }, () => false);
          triggered.push({ ...run, runId: id, triggeredAt: Date.now() });
        } catch (error) {
          triggerErrors.push(`run ${run.index} (${run.task}): ${(error as Error).message}`);
        }
      })());
    }
    await Promise.all(pending);
  };

  return { triggered, triggerErrors, accepted, eventSendAttempts, sendEvents, trigger, pendingEvents: () => waiting.size };
}
