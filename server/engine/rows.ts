import type { RunStatus } from "../../schemas/index.ts";

/** A `runs` row as the engine reads it. */
export interface RunRow {
  id: string;
  seq: number;
  environment_id: string;
  task_id: string;
  status: RunStatus;
  payload: unknown;
  output: unknown;
  error: unknown;
  deployment_id: string | null;
  attempt_count: number;
  max_attempts: number | null;
  max_duration_s: number | null;
  tags: string[];
  idempotency_key: string | null;
  parent_run_id: string | null;
  replay_of: string | null;
  available_at: Date;
  runner_id: string | null;
  lease_id: string | null;
  lease_expires_at: Date | null;
  execution_ms: number;
  execution_started_at: Date | null;
  deadline_at: Date | null;
  expires_at: Date | null;
  waitpoint_id: string | null;
  checkpoint_location: string | null;
  checkpoint_sha256: string | null;
  /** The workload (runner kind) that took the checkpoint; NULL: any (taken before migration 012). */
  checkpoint_workload: string | null;
  /** The runner that took the checkpoint (its dump may still be on that runner's disk); NULL: none in particular (migration 017). */
  checkpoint_runner_id: string | null;
  /** While a queued resume is held for the runner with its dump (until `resume_held_until`), other runners skip it. */
  resume_runner_id: string | null;
  resume_held_until: Date | null;
  /** The checkpoint's key, wrapped by the project's data key (crypto.ts wrapCheckpointKey). */
  checkpoint_key: Buffer | null;
  checkpoint_waitpoint_id: string | null;
  resume: unknown;
  stop_pending: boolean;
  stop_reason: string | null;
  log_seq: number;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
}

export interface DeploymentRow {
  id: string;
  environment_id: string;
  version: string;
  version_date: number;
  version_n: number;
  status: string;
  image_ref: string | null;
  image_digest: string | null;
  manifest: any;
  tasks: string[];
  commit: unknown;
  failure_reason: string | null;
  heartbeat_at: Date | null;
  created_at: Date;
  deployed_at: Date | null;
}

export interface WaitpointRow {
  id: string;
  environment_id: string;
  run_id: string | null;
  kind: string;
  status: string;
  spec: any;
  event_name: string | null;
  filter: any;
  token_hash: string | null;
  wait_key: string | null;
  child_run_ids: string[] | null;
  due_at: Date | null;
  result: any;
  created_at: Date;
  completed_at: Date | null;
}

export const iso = (value: Date | null | undefined): string | null => (value ? value.toISOString() : null);
