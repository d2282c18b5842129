import { z } from "zod";
import { RunStatus } from "./status.ts";

/** `POST /api/v1/admin/checkpoints/owners`: which runs (of which project) the checkpoints a store holds belong to. */
export const CheckpointOwnersRequest = z.object({ runIds: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "a run id is letters, digits, \".\", \"_\" and \"-\"")).max(1000) }).strict();

export const CheckpointOwner = z.object({
  runId: z.string(),
  project: z.string(),
  environment: z.string(),
  status: RunStatus,
  /** The checkpoint the run will resume from, if any: only that one of the run's checkpoints is in use. */
  checkpointLocation: z.string().nullable(),
});
export const CheckpointOwnersResponse = z.object({ data: z.array(CheckpointOwner) });

/**
 * A stored checkpoint as `stasis checkpoints list|gc` sees it. `in-use`: the run resumes from it;
 * `recent`: not (yet) named by its run, which has not ended — a suspend may still be reporting it;
 * `orphaned`: nothing will ever restore it (its run ended, or it is older than the minimum age).
 */
export const CheckpointState = z.enum(["in-use", "recent", "orphaned"]);
export const StoredCheckpointView = z.object({
  location: z.string(),
  key: z.string(),
  runId: z.string(),
  project: z.string().nullable(),
  environment: z.string().nullable(),
  runStatus: RunStatus.nullable(),
  sizeBytes: z.number().int().nonnegative(),
  createdAt: z.string(),
  state: CheckpointState,
});
export const CheckpointProjectTotals = z.object({
  project: z.string().nullable(),
  checkpoints: z.number().int(),
  bytes: z.number().int(),
  reclaimableBytes: z.number().int(),
});
/** `stasis checkpoints list --json`. */
export const CheckpointsListOutput = z.object({
  store: z.string(),
  checkpoints: z.array(StoredCheckpointView),
  projects: z.array(CheckpointProjectTotals),
});
/** `stasis checkpoints gc --json`. */
export const CheckpointsGcOutput = z.object({
  store: z.string(),
  dryRun: z.boolean(),
  deleted: z.array(StoredCheckpointView),
  reclaimedBytes: z.number().int(),
  kept: z.number().int(),
  failed: z.array(z.object({ location: z.string(), error: z.string() })),
});
