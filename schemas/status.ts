import { z } from "zod";

/**
 * Run lifecycle. The allowed transitions live here, in one table, so the server (compare-and-set
 * in SQL) and anyone reading the code see the same machine.
 */
export const RunStatus = z.enum([
  "PENDING_VERSION", // no deployment of the environment contains the task yet
  "DELAYED", // triggered with `delay`; claimable once available_at has passed
  "QUEUED", // ready to be claimed (first attempt, or a resume from a checkpoint)
  "RETRYING", // a failed attempt waits out its backoff; claimable once available_at has passed
  "EXECUTING", // a runner holds the lease and the process is running
  "WAITING", // blocked on a waitpoint, process alive on its runner
  "SUSPENDED", // blocked on a waitpoint, process frozen in a checkpoint, no runner holds it
  "COMPLETED",
  "FAILED",
  "CANCELED",
  "TIMED_OUT", // exceeded maxDuration
  "EXPIRED", // stayed PENDING_VERSION past its deadline
]);
export type RunStatus = z.infer<typeof RunStatus>;

export const FINAL_RUN_STATUSES: readonly RunStatus[] = ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT", "EXPIRED"];

export const RUN_TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
  PENDING_VERSION: ["QUEUED", "DELAYED", "CANCELED", "EXPIRED"],
  DELAYED: ["EXECUTING", "PENDING_VERSION", "CANCELED"],
  QUEUED: ["EXECUTING", "PENDING_VERSION", "CANCELED"],
  RETRYING: ["EXECUTING", "CANCELED"],
  EXECUTING: ["COMPLETED", "FAILED", "RETRYING", "WAITING", "QUEUED", "CANCELED", "TIMED_OUT", "EXECUTING"],
  WAITING: ["EXECUTING", "SUSPENDED", "QUEUED", "CANCELED", "TIMED_OUT", "FAILED", "RETRYING"],
  SUSPENDED: ["QUEUED", "CANCELED", "TIMED_OUT"],
  COMPLETED: [],
  FAILED: [],
  CANCELED: [],
  TIMED_OUT: [],
  EXPIRED: [],
};

export function canTransition(from: RunStatus, to: RunStatus): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

export function isFinalRunStatus(status: RunStatus): boolean {
  return FINAL_RUN_STATUSES.includes(status);
}

export const DeploymentStatus = z.enum(["PENDING", "BUILDING", "DEPLOYED", "FAILED", "CANCELED", "TIMED_OUT"]);
export type DeploymentStatus = z.infer<typeof DeploymentStatus>;

export const DEPLOYMENT_TRANSITIONS: Readonly<Record<DeploymentStatus, readonly DeploymentStatus[]>> = {
  PENDING: ["BUILDING", "DEPLOYED", "FAILED", "CANCELED", "TIMED_OUT"],
  BUILDING: ["DEPLOYED", "FAILED", "CANCELED", "TIMED_OUT"],
  DEPLOYED: [],
  FAILED: [],
  CANCELED: [],
  TIMED_OUT: [],
};

export const WaitpointStatus = z.enum(["PENDING", "COMPLETED", "TIMED_OUT", "CANCELED"]);
export type WaitpointStatus = z.infer<typeof WaitpointStatus>;
