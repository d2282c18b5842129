import type { z } from "zod";
import { isFinalRunStatus, type CheckpointOwner, type CheckpointProjectTotals, type StoredCheckpointView } from "../../schemas/index.ts";
import type { StoredCheckpoint } from "./types.ts";

type Owner = z.infer<typeof CheckpointOwner>;
type View = z.infer<typeof StoredCheckpointView>;

/** The run a checkpoint key belongs to: its first segment (`<run id>/<attempt>-<ms>`). */
export const runIdOfKey = (key: string): string => key.split("/")[0]!;

/**
 * What each stored checkpoint is for (pure; `stasis checkpoints list|gc`): `in-use` when its run
 * names it as the checkpoint to resume from; `orphaned` when nothing will restore it — its run
 * ended (every checkpoint of a final run), or the server knows no such run, or the run names
 * another checkpoint — and it is older than `minAgeMs` unless its run ended; else `recent` (a
 * runner may have stored it and not yet reported the suspend).
 */
export function classifyCheckpoints(stored: StoredCheckpoint[], owners: Owner[], now: number, minAgeMs: number): View[] {
  const byRun = new Map(owners.map((o) => [o.runId, o]));
  return stored
    .map((c): View => {
      const runId = runIdOfKey(c.key);
      const owner = byRun.get(runId);
      const ended = owner ? isFinalRunStatus(owner.status) : false;
      const state = owner?.checkpointLocation === c.location ? "in-use" : ended || now - c.createdAt >= minAgeMs ? "orphaned" : "recent";
      return {
        location: c.location,
        key: c.key,
        runId,
        project: owner?.project ?? null,
        environment: owner?.environment ?? null,
        runStatus: owner?.status ?? null,
        sizeBytes: c.sizeBytes,
        createdAt: new Date(c.createdAt).toISOString(),
        state,
      };
    })
    .sort((a, b) => (a.project ?? "").localeCompare(b.project ?? "") || a.createdAt.localeCompare(b.createdAt));
}

/** Per project (null: runs the server does not know): how many, how many bytes, how many of them orphaned. */
export function totalsPerProject(views: View[]): Array<z.infer<typeof CheckpointProjectTotals>> {
  const totals = new Map<string | null, z.infer<typeof CheckpointProjectTotals>>();
  for (const v of views) {
    const t = totals.get(v.project) ?? { project: v.project, checkpoints: 0, bytes: 0, reclaimableBytes: 0 };
    t.checkpoints++;
    t.bytes += v.sizeBytes;
    if (v.state === "orphaned") t.reclaimableBytes += v.sizeBytes;
    totals.set(v.project, t);
  }
  return [...totals.values()];
}
