// The chaos run's tasks. Every side effect is a POST to the harness's ledger naming the run, the
// attempt that started this process (a restored process keeps its own ctx) and the step. A run's
// final step records a fresh token and returns it, so the harness can tell one finish from two.
import { events, task, wait, WaitTimeoutError } from "stasis/sdk";
import { record, token, type LedgerPayload } from "../lib/ledger.ts";

class ChaosIntendedError extends Error {
  override name = "ChaosIntended";
}

async function finish(ledger: string, runId: string, attempt: number, extra: Record<string, unknown> = {}) {
  const t = token();
  await record(ledger, runId, attempt, "end", t);
  return { token: t, ...extra };
}

export const noop = task({
  id: "chaos-noop",
  run: async (payload: LedgerPayload, { ctx }) => finish(payload.ledger, ctx.runId, ctx.attempt),
});

/** Throws on its first `failTimes` fresh attempts, then finishes. */
export const flaky = task({
  id: "chaos-flaky",
  run: async (payload: LedgerPayload & { failTimes: number }, { ctx }) => {
    await record(payload.ledger, ctx.runId, ctx.attempt, "begin");
    if (ctx.attempt <= payload.failTimes) {
      await record(payload.ledger, ctx.runId, ctx.attempt, "throw");
      throw new ChaosIntendedError(`attempt ${ctx.attempt} fails on purpose`);
    }
    return finish(payload.ledger, ctx.runId, ctx.attempt);
  },
});

/** Waits `waits` (ms each, 1–30 s: long ones freeze), recording a step after each completed wait. */
export const sleeper = task({
  id: "chaos-sleeper",
  run: async (payload: LedgerPayload & { waits: number[] }, { ctx }) => {
    await record(payload.ledger, ctx.runId, ctx.attempt, "begin");
    for (let i = 0; i < payload.waits.length; i++) {
      await wait.for(payload.waits[i]);
      await record(payload.ledger, ctx.runId, ctx.attempt, `after-wait-${i + 1}`, token());
    }
    return finish(payload.ledger, ctx.runId, ctx.attempt);
  },
});

export const child = task({
  id: "chaos-child",
  run: async (payload: LedgerPayload & { value: number; waitMs: number }, { ctx }) => {
    await record(payload.ledger, ctx.runId, ctx.attempt, "begin");
    if (payload.waitMs > 0) {
      await wait.for(payload.waitMs);
      await record(payload.ledger, ctx.runId, ctx.attempt, "after-wait-1", token());
    }
    return finish(payload.ledger, ctx.runId, ctx.attempt, { doubled: payload.value * 2 });
  },
});

/** One triggerAndWait, then a batchTriggerAndWait of `batch` children. */
export const parent = task({
  id: "chaos-parent",
  run: async (payload: LedgerPayload & { batch: number; childWaitMs: number }, { ctx }) => {
    const ledger = payload.ledger;
    await record(ledger, ctx.runId, ctx.attempt, "begin");
    const single = await child.triggerAndWait({ ledger, value: 21, waitMs: payload.childWaitMs });
    await record(ledger, ctx.runId, ctx.attempt, "after-wait-1", { ok: single.ok, token: token() });
    const batch = await child.batchTriggerAndWait(Array.from({ length: payload.batch }, (_, i) => ({ payload: { ledger, value: i, waitMs: i === 0 ? payload.childWaitMs : 0 } })));
    await record(ledger, ctx.runId, ctx.attempt, "after-wait-2", { ok: batch.map((r) => r.ok), token: token() });
    return finish(ledger, ctx.runId, ctx.attempt, { single: single.ok, batch: batch.map((r) => r.ok) });
  },
});

/**
 * Records "waiting-event" (the harness's sender watches for it), then waits for the event named
 * after this run. A timeout ends the run (so a dropped event shows as a run that timed out, not
 * as a run that never ends).
 */
export const eventWaiter = task({
  id: "chaos-event",
  run: async (payload: LedgerPayload & { timeoutSeconds: number }, { ctx }) => {
    await record(payload.ledger, ctx.runId, ctx.attempt, "waiting-event");
    let eventId: string | null = null;
    try {
      const received = await events.waitForEvent({ event: `chaos.${ctx.runId}`, timeout: { seconds: payload.timeoutSeconds } });
      eventId = received.id;
    } catch (error) {
      if (!(error instanceof WaitTimeoutError)) throw error;
    }
    await record(payload.ledger, ctx.runId, ctx.attempt, "after-event", { eventId, token: token() });
    return finish(payload.ledger, ctx.runId, ctx.attempt, { eventId });
  },
});
