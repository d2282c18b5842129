import type { Knex } from "knex";
import { hotQuery } from "../db/prepared.ts";
import type { RunRow } from "../engine/rows.ts";

/** A locked candidate with what the claim needs to know about its place, read in the same statement. */
export type ClaimCandidate = RunRow & {
  environment_slug: string;
  environment_number: string | number;
  project_slug: string;
  project_id: string;
  /** The run's own deployment, else the environment's promoted one when it has the task, else null (PENDING_VERSION). */
  target_deployment_id: string | null;
  /** Whether the environment has variables (its own or, for a preview, the `preview` set): none, no read for them. */
  has_variables: boolean;
  /** A resume whose attempt is still EXECUTING: it continues that attempt (the process is restored). */
  attempt_open: boolean;
  /** A resume whose run has a variables snapshot (what its process was started with). */
  has_snapshot: boolean;
  /** A resume's project data key row (its checkpoint's key is wrapped by that key); null when it is no resume or the project has none. */
  data_master_key_id: string | null;
  data_wrapped_key: Buffer | null;
};

/**
 * Claim candidates for one poll, graphile-worker style: lock up to `limit` due runs with
 * `FOR UPDATE SKIP LOCKED`, so N runners (and N server replicas) polling at once each get
 * disjoint rows without waiting on each other's locks. The `runs_claimable` partial index
 * (available_at, seq) WHERE status IN (QUEUED, DELAYED, RETRYING) makes this an index range scan
 * that never touches finished runs, however many there are.
 *
 * Whether the environment has any variables comes along too: most have none, and then the claim
 * reads none (one round trip fewer between a trigger and its task's start).
 *
 * The lock itself is the function `stasis_lock_claimable_runs` (migration 018, which holds its
 * text), run with `enable_bitmapscan = off` as the one-statement claim is: see the migration.
 *
 * The environment, project and promoted deployment come along in the same statement, joined to
 * the locked rows outside the locking scan (a MATERIALIZED CTE: joined inside it, the planner may
 * leave the partial index for a join order that reads far more rows), so a claim of 25 runs costs one round trip here instead of three per
 * run (pg_stat_statements in bench/server-throughput showed those lookups as a third of a claim's
 * statements).
 *
 * A run resuming from a checkpoint goes only to a runner of the workload that took it (a process
 * runner cannot restore a runc checkpoint; the claiming runner's workload is read in the same
 * statement); the filter is on the rows the index range already
 * yields, so a checkpoint no runner here can restore is skipped, not a blocker for the rest.
 * Likewise a resume held for the runner that has its dump on disk (engine/resume-hold.ts, for about
 * a second) is skipped by the others until the hold ends.
 *
 * For a resume, whether its attempt is still open, whether its run kept a variables snapshot and its
 * project's wrapped data key come along too (each an index probe): three round trips fewer between an
 * event and the restore's claim.
 *
 * Only the lock is taken here; the caller decides per row (PENDING_VERSION, new attempt) and moves
 * the rows to EXECUTING with one compare-and-set statement in the same transaction
 * (start-attempts.ts), so a crash between the two leaves the runs claimable.
 */
const candidatesOf = (locked: string) => `
  WITH locked AS MATERIALIZED (${locked})
  SELECT l.*,
         e.slug AS environment_slug,
         e.number AS environment_number,
         p.slug AS project_slug,
         p.id AS project_id,
         COALESCE(l.deployment_id, CASE WHEN l.task_id = ANY(pd.tasks) THEN pd.id END) AS target_deployment_id,
         EXISTS (SELECT 1 FROM environment_variables v WHERE v.project_id = p.id AND (v.scope = e.slug OR (e.slug LIKE 'preview/%' AND v.scope = 'preview'))) AS has_variables,
         (l.resume IS NOT NULL AND EXISTS (SELECT 1 FROM run_attempts a WHERE a.run_id = l.id AND a.number = l.attempt_count AND a.status = 'EXECUTING')) AS attempt_open,
         (l.resume IS NOT NULL AND EXISTS (SELECT 1 FROM run_variables rv WHERE rv.run_id = l.id)) AS has_snapshot,
         dk.master_key_id AS data_master_key_id,
         dk.wrapped_key AS data_wrapped_key
  FROM locked l
  JOIN environments e ON e.id = l.environment_id
  JOIN projects p ON p.id = e.project_id
  LEFT JOIN deployments pd ON pd.id = e.promoted_deployment_id
  LEFT JOIN project_data_keys dk ON l.resume IS NOT NULL AND dk.project_id = p.id
  ORDER BY l.available_at, l.seq
`;
const CLAIM_SQL = candidatesOf("SELECT * FROM stasis_lock_claimable_runs(?, ?)");
/** One SUSPENDED run the caller's transaction holds locked, queued to resume (compare-and-set) and read as a candidate in the same statement. */
const QUEUE_RESUME_SQL = candidatesOf("UPDATE runs SET status = 'QUEUED', resume = ?::jsonb, available_at = now() WHERE id = ? AND status = 'SUSPENDED' RETURNING *");

export async function lockClaimableRuns(trx: Knex.Transaction, limit: number, runnerId: string): Promise<ClaimCandidate[]> {
  if (limit <= 0) return [];
  return (await hotQuery<ClaimCandidate>(trx, "stasis_claim_candidates", CLAIM_SQL, [runnerId, limit])).rows;
}

/**
 * Queues the SUSPENDED run `runId` (locked by this transaction) to resume with `resume` (its JSON) and
 * reads its claim candidate, in one round trip: the resume pushed to the runner holding its dump
 * (resume-push.ts) is claimed in the same transaction. null: the run was not SUSPENDED.
 */
export async function queueResumeCandidate(trx: Knex.Transaction, runId: string, resume: string): Promise<ClaimCandidate | null> {
  return (await hotQuery<ClaimCandidate>(trx, "stasis_queue_resume_candidate", QUEUE_RESUME_SQL, [resume, runId])).rows[0] ?? null;
}
