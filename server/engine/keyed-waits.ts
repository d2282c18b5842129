import type { Knex } from "knex";
import type { WaitSpec } from "../../schemas/index.ts";
import type { Engine } from "./context.ts";
import { notify } from "./notify.ts";
import type { RunRow, WaitpointRow } from "./rows.ts";

/**
 * What must be equal for a wait a run reaches again to be the same wait. An event wait is its
 * event and filter (its timeout counts from the first time it was reached, like a duration's
 * deadline); a request wait is any request wait (its token is new each time it is created).
 */
function identityOf(spec: WaitSpec | { kind: "request" }): unknown {
  if (spec.kind === "event") return { kind: "event", event: spec.event, filter: spec.filter ?? null };
  if (spec.kind === "request") return { kind: "request" };
  return spec;
}

/** JSON with object keys sorted, so `{a,b}` and `{b,a}` compare equal. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

export function isSameWait(earlier: WaitpointRow, spec: WaitSpec | { kind: "request" }): boolean {
  return earlier.kind === spec.kind && canonical(identityOf(earlier.spec as WaitSpec)) === canonical(identityOf(spec));
}

/**
 * The waitpoint an earlier attempt of this run created under `key`, when the wait reached now is
 * that same wait: the caller reuses it (and hands back its result if it has one). Not locked: the
 * run row is (the caller holds it), and completion locks waitpoint → run, so a completion either
 * committed before this read (we see the result) or finds the run waiting on it after we commit.
 *
 * When the wait reached under that key is a different one — its spec changed between attempts,
 * e.g. `wait.until(Date.now() + …)` or an event name built from a random id — the earlier waitpoint
 * gives up its key (canceled if still PENDING), the run log says so, and the caller creates a new
 * one. Failing the run instead would punish harmless non-determinism; a waitpoint is never reused
 * for a wait it was not made for.
 */
export async function findKeyedWait(trx: Knex.Transaction, engine: Engine, run: RunRow, key: string, spec: WaitSpec | { kind: "request" }): Promise<WaitpointRow | null> {
  const earlier = (await trx("waitpoints").where({ run_id: run.id, wait_key: key }).first()) as WaitpointRow | undefined;
  if (!earlier) return null;
  if (earlier.status !== "CANCELED" && isSameWait(earlier, spec)) return earlier;
  await trx("waitpoints").where({ id: earlier.id }).update({ wait_key: `${key}/superseded/${earlier.id}` });
  await trx("waitpoints").where({ id: earlier.id, status: "PENDING" }).update({ status: "CANCELED", completed_at: trx.fn.now(), result: JSON.stringify({ kind: "canceled" }) });
  if (earlier.status !== "CANCELED") {
    const message =
      `[stasis] wait ${key} of this run was ${describe(earlier.spec as WaitSpec)} in an earlier attempt and is ${describe(spec)} now; ` +
      `the earlier waitpoint ${earlier.id} (${earlier.status.toLowerCase()}) is left behind and a new wait begins`;
    engine.logger.warn({ runId: run.id, key, earlier: earlier.id }, "a re-executed wait differs from the earlier attempt's");
    await appendRunLog(trx, run.id, message);
  }
  return null;
}

function describe(spec: WaitSpec | { kind: "request" }): string {
  switch (spec.kind) {
    case "duration":
      return `a wait of ${spec.ms} ms`;
    case "until":
      return `a wait until ${spec.date}`;
    case "event":
      return `a wait for event "${spec.event}"${spec.filter ? ` with filter ${JSON.stringify(spec.filter)}` : ""}`;
    case "runs":
      return `a wait for runs ${spec.runIds.join(", ")}`;
    case "request":
      return "a wait for a request";
  }
}

/** One warning line in the run's log, numbered like the runner's lines (the run row is locked). */
async function appendRunLog(trx: Knex.Transaction, runId: string, message: string): Promise<void> {
  const [row] = await trx("runs").where({ id: runId }).increment("log_seq", 1).returning(["log_seq", "attempt_count"]);
  await trx("run_logs").insert({ run_id: runId, seq: Number(row.log_seq), ts: new Date(), level: "warn", message, attempt: row.attempt_count });
  await notify(trx, "logs");
}

/**
 * A request waitpoint by one of its tokens: the one it was created with, or one a re-executed
 * `wait.forRequest` was given for it later (`waitpoint_tokens`).
 */
export async function requestWaitpointIdOf(trx: Knex.Transaction, tokenHash: string): Promise<string | null> {
  const direct = await trx("waitpoints").where({ token_hash: tokenHash, kind: "request" }).first("id");
  if (direct) return direct.id as string;
  const alias = await trx("waitpoint_tokens").where({ token_hash: tokenHash }).first("waitpoint_id");
  return (alias?.waitpoint_id as string | undefined) ?? null;
}
