import { dirname } from "node:path";
import type { ClaimedRun } from "../schemas/index.ts";
import { SANDBOX_TMP, type TaskSandbox } from "./workload/task-sandbox.ts";

/** uid of environment N's task processes: base + N (gid the same). Above every range a distribution hands out (system, users, subuids). */
export const DEFAULT_TASK_UID_BASE = 1_000_000_000;
const MAX_UID = 2 ** 31 - 2;

/** Places a host keeps Stasis's own secrets in (`/etc/stasis`: config and tokens; `/var/lib/stasis`: the embedded PostgreSQL's data and password). */
export const HOST_SECRET_PATHS = ["/etc/stasis", "/var/lib/stasis", "/run/secrets"];

export interface TaskSandboxPolicy {
  /** Default DEFAULT_TASK_UID_BASE (`--task-uid-base`, STASIS_TASK_UID_BASE). */
  uidBase?: number;
  /** The runner's own dirs (work dir, checkpoint store, image cache, state dir) and STASIS_TASK_HIDE_PATHS: never visible to a task. */
  hide: string[];
  /** Host dirs the operator shares with every task, read-write at the same path (`--task-shared-dirs`, STASIS_TASK_SHARED_DIRS). */
  shared?: string[];
  /** Size of each task's private /tmp in MB. */
  tmpMb?: number;
}

export class TaskUserError extends Error {
  override name = "TaskUserError";
}

/**
 * The sandbox of a run's task process: its environment's own uid — one per environment, the same on
 * every runner, so a process restored elsewhere keeps the uid it had and two environments never share
 * one — with the runner's dirs and the host's Stasis secrets hidden, and only its app dir, Node and
 * the files Node's flags name in its root.
 */
export function taskSandboxFor(policy: TaskSandboxPolicy, claim: Pick<ClaimedRun, "environmentNumber">, appDir: string): TaskSandbox {
  const base = policy.uidBase ?? DEFAULT_TASK_UID_BASE;
  const uid = base + claim.environmentNumber;
  if (!Number.isSafeInteger(uid) || uid > MAX_UID || claim.environmentNumber < 1) {
    throw new TaskUserError(`environment number ${claim.environmentNumber} gives uid ${uid}, above ${MAX_UID}: lower the task uid base (${base})`);
  }
  // The files Node's flags name (the OpenSSL config) are copied into the task's root by the runtime (StartTaskOptions.files).
  const expose = [appDir, dirname(process.execPath)];
  return { uid, gid: uid, expose, hide: [...policy.hide, ...HOST_SECRET_PATHS], shared: policy.shared ?? [], tmpMb: policy.tmpMb };
}

/** What a sandboxed task's environment says about its home and temp dir (it has no passwd entry). */
export const SANDBOX_ENV = { HOME: SANDBOX_TMP, TMPDIR: SANDBOX_TMP } as const;

/** `a:b:c` (or comma-separated) → list; empty entries dropped. */
export function pathList(text: string | undefined): string[] {
  return (text ?? "").split(/[:,]/).map((p) => p.trim()).filter(Boolean);
}

/** Task processes can be sandboxed only by root (they change uid and mount). */
export const canSandboxTasks = (): boolean => process.getuid?.() === 0;
