import { inTransaction } from "../db/transaction.ts";
import type { ReceivedRequest } from "../../schemas/index.ts";
import { sha256 } from "../auth.ts";
import { conflict, notFound } from "../errors.ts";
import type { Engine } from "./context.ts";
import { requestWaitpointIdOf } from "./keyed-waits.ts";
import type { WaitpointRow } from "./rows.ts";
import { completeWaitpoint } from "./waitpoints.ts";

// Credentials of whoever calls the URL are not handed to task code.
const DROPPED_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);

export function toReceivedRequest(input: { method: string; headers: Record<string, unknown>; query: Record<string, unknown>; body: unknown }): ReceivedRequest {
  const flat = (record: Record<string, unknown>, drop?: Set<string>) =>
    Object.fromEntries(
      Object.entries(record)
        .filter(([k, v]) => v !== undefined && !drop?.has(k.toLowerCase()))
        .map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : String(v)]),
    );
  return { method: input.method, headers: flat(input.headers, DROPPED_HEADERS), query: flat(input.query), body: input.body ?? null, receivedAt: new Date().toISOString() };
}

/** A hit on a request-wait URL: the unguessable token is the authorization. Completes once. */
export async function receiveRequest(engine: Engine, token: string, request: ReceivedRequest): Promise<{ waitpointId: string }> {
  return await inTransaction(engine.db, async (trx) => {
    const id = await requestWaitpointIdOf(trx, sha256(token));
    const wp = id ? ((await trx("waitpoints").where({ id, kind: "request" }).forUpdate().first()) as WaitpointRow | undefined) : undefined;
    if (!wp) throw notFound("unknown request token");
    if (wp.status !== "PENDING") throw conflict(`this request URL was already completed (${wp.status.toLowerCase()})`, "ALREADY_COMPLETED");
    await completeWaitpoint(trx, wp.id, { kind: "request", request });
    return { waitpointId: wp.id };
  });
}
