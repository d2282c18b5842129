import type { Knex } from "knex";
import { isDeepStrictEqual } from "node:util";
import type { WaitResult, WaitSpec } from "../../schemas/index.ts";
import { sha256 } from "../auth.ts";
import type { RunRow, WaitpointRow } from "./rows.ts";

/*
 * A runner retries every report whose answer it did not get (the server or its database went away
 * mid-call). These checks recognise a repeat of a report the server already applied, so the repeat
 * gets the answer the first one got instead of a conflict that would make the runner throw away a
 * run that is in fact fine.
 */

/**
 * A repeated suspend: the run already took this checkpoint (its location is unique to one dump), so
 * the lease was handed back by the first call. Answers what the first call answered; a run that has
 * moved on since (queued, claimed again) answers QUEUED.
 */
export async function repeatedSuspend(trx: Knex.Transaction, runId: string, checkpointLocation: string): Promise<{ status: "SUSPENDED" | "QUEUED" } | null> {
  const run = (await trx("runs").where({ id: runId }).first("status", "checkpoint_location")) as Pick<RunRow, "status" | "checkpoint_location"> | undefined;
  if (!run || run.checkpoint_location !== checkpointLocation) return null;
  return { status: run.status === "SUSPENDED" ? "SUSPENDED" : "QUEUED" };
}

/**
 * A repeated wait: the run (still under the caller's lease) is already WAITING on a waitpoint with
 * exactly this spec — a process waits on one thing at a time, so this is the same call again.
 */
export async function repeatedWait(trx: Knex.Transaction, run: RunRow, spec: WaitSpec): Promise<{ waitpointId: string; result: WaitResult | null } | null> {
  if (run.status !== "WAITING" || !run.waitpoint_id) return null;
  const wp = (await trx("waitpoints").where({ id: run.waitpoint_id }).first()) as WaitpointRow | undefined;
  if (!wp) return null;
  // A request wait waits on the waitpoint its token made; any other spec is stored as it came (through JSON).
  const same = spec.kind === "request" ? wp.token_hash === sha256(spec.token) : isDeepStrictEqual(wp.spec, JSON.parse(JSON.stringify(spec)));
  if (!same) return null;
  return { waitpointId: wp.id, result: null };
}
