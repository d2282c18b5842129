import { inTransaction } from "../db/transaction.ts";
import type { EventFilter } from "../../schemas/index.ts";
import type { Engine } from "./context.ts";
import { matchesFilter } from "./event-filter.ts";
import { newId } from "./ids.ts";
import type { WaitpointRow } from "./rows.ts";
import { assertPayloadSize } from "./trigger-run.ts";
import { completeWaitpoint } from "./waitpoints.ts";

/**
 * Delivers an event to every PENDING event waitpoint of the environment with that name whose filter
 * matches. Idempotent by id: a second delivery of the same id says `duplicate`, completes nothing, and
 * answers what the first one matched — a sender that lost the first answer (the connection broke after
 * the commit) and retries learns that its event was delivered, instead of reading 0 and sending again.
 */
export async function sendEvent(engine: Engine, environmentId: string, body: { event: string; payload: unknown; id?: string }): Promise<{ id: string; duplicate: boolean; matchedWaitpoints: number }> {
  assertPayloadSize(body.payload);
  const id = body.id ?? newId("evt");
  return await inTransaction(engine.db, async (trx) => {
    // The waits it matches first, locked, so that the event row is written once with their count. A repeat of
    // an id finds them completed by the first delivery (or waits for its commit), and then its insert conflicts.
    const candidates = (await trx("waitpoints").where({ environment_id: environmentId, kind: "event", status: "PENDING", event_name: body.event }).orderBy("created_at").forUpdate()) as WaitpointRow[];
    const matching = candidates.filter((wp) => matchesFilter(wp.filter as EventFilter | null, body.payload));
    const inserted = await trx("events")
      .insert({ environment_id: environmentId, id, event: body.event, payload: JSON.stringify(body.payload ?? null), matched_waitpoints: matching.length })
      .onConflict(["environment_id", "id"])
      .ignore()
      .returning("id");
    if (inserted.length === 0) {
      const first = (await trx("events").where({ environment_id: environmentId, id }).first("matched_waitpoints")) as { matched_waitpoints: number } | undefined;
      return { id, duplicate: true, matchedWaitpoints: first?.matched_waitpoints ?? 0 };
    }
    // Each is PENDING and locked by this transaction: each completes.
    for (const wp of matching) await completeWaitpoint(trx, wp.id, { kind: "event", id, event: body.event, payload: body.payload ?? null });
    return { id, duplicate: false, matchedWaitpoints: matching.length };
  });
}
