import type { Knex } from "knex";
import { hotQuery } from "../db/prepared.ts";

/** A run the one-statement claim moved to EXECUTING, with what its claim answer needs. */
export interface FreshClaim {
  id: string;
  task_id: string;
  payload: unknown;
  tags: string[] | null;
  environment_id: string;
  environment_slug: string;
  environment_number: string | number;
  project_slug: string;
  deployment_id: string;
  lease_id: string;
  attempt_count: number;
  deadline_at: string | null;
}

/**
 * The common claim in one statement and one round trip (autocommit: no BEGIN, no COMMIT round
 * trips): a first or later attempt that resumes no checkpoint, of a run whose deployment is known
 * (its own, or the promoted one that has the task), in an environment without variables (or on a
 * server without a master key, where no run gets any). Lock as claim-runs.ts does (`FOR UPDATE SKIP
 * LOCKED` over the `runs_claimable` partial index), then move the eligible rows to EXECUTING with a
 * compare-and-set on the state they were locked in and write their attempts, in data-modifying CTEs
 * of the same statement, so a run is never moved without its attempt nor claimed twice. maxDuration's
 * budget comes from the run or its task's manifest entry, as `maxDurationMs` in claim.ts computes it.
 *
 * Rows it locked but may not take (a resume, PENDING_VERSION, variables to decrypt and snapshot) are
 * counted in `locked` and released at the end of the statement, untouched; the caller then runs the
 * full claim (claim.ts) for them. Lease ids come from the caller (`lease_<claimKey>_…`), one per
 * locked row in queue order. bench/trigger-latency/sql-trace.ts: the full claim was BEGIN, two or
 * more statements and COMMIT in sequence between a trigger's commit and its runner's answer.
 *
 * The statement lives in the function `stasis_claim_fresh_runs` (migration 015, which holds its
 * text), run with `enable_bitmapscan = off`: see the migration for the plan that setting avoids.
 */
const CLAIM_FRESH_SQL = `SELECT locked, moved FROM stasis_claim_fresh_runs(?, ?, ?, ?::text[], ?)`;

export async function claimFreshRuns(db: Knex, options: { runnerId: string; limit: number; leaseMs: number; leaseIds: string[]; keyring: boolean }): Promise<{ locked: number; moved: FreshClaim[] }> {
  const result = await hotQuery<{ locked: number; moved: FreshClaim[] }>(db, "stasis_claim_fresh", CLAIM_FRESH_SQL, [options.runnerId, options.limit, !options.keyring, options.leaseIds, options.leaseMs]);
  const row = result.rows[0];
  return { locked: row.locked, moved: row.moved };
}
