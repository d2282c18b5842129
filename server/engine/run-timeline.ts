import type { Knex } from "knex";
import type { RunTimeline, TimelineWait } from "../../schemas/index.ts";
import { iso } from "./rows.ts";

interface WaitRow {
  id: string;
  kind: string;
  wait_key: string | null;
  status: string;
  spec: Record<string, unknown> | null;
  event_name: string | null;
  child_run_ids: string[] | null;
  created_at: Date;
  completed_at: Date | null;
  due_at: Date | null;
  suspended_at: Date | null;
  checkpoint_bytes: string | number | null;
  resumed_at: Date | null;
  resumed_runner_id: string | null;
}

function describe(row: WaitRow): string {
  const spec = row.spec ?? {};
  switch (row.kind) {
    case "duration":
      return `${Math.round(Number(spec.ms ?? 0) / 100) / 10}s`;
    case "until":
      return `until ${String(spec.date ?? "")}`;
    case "event":
      return `event ${row.event_name ?? String(spec.event ?? "")}`;
    case "request":
      return "an HTTP request";
    case "runs":
      return `${row.child_run_ids?.length ?? 0} child run(s)`;
    default:
      return row.kind;
  }
}

/** Waits (frozen or alive), in the order the run reached them, and child runs; attempts come with the run view. */
export async function runTimeline(db: Knex, runId: string, attempts: RunTimeline["attempts"]): Promise<RunTimeline> {
  // waitpoints_run (008) serves the first query, runs_parent the second.
  const waits = (await db("waitpoints").where({ run_id: runId }).orderBy("created_at").limit(500)) as WaitRow[];
  const children = await db("runs").where({ parent_run_id: runId }).orderBy("seq").limit(500).select("id", "task_id", "status", "created_at");
  return {
    runId,
    attempts,
    waits: waits.map(
      (w): TimelineWait => ({
        id: w.id,
        kind: w.kind,
        key: w.wait_key,
        status: w.status,
        detail: describe(w),
        createdAt: w.created_at.toISOString(),
        completedAt: iso(w.completed_at),
        dueAt: iso(w.due_at),
        frozen: w.suspended_at !== null,
        checkpointBytes: w.checkpoint_bytes === null ? null : Number(w.checkpoint_bytes),
        suspendedAt: iso(w.suspended_at),
        resumedAt: iso(w.resumed_at),
        resumedRunnerId: w.resumed_runner_id,
      }),
    ),
    children: children.map((c) => ({ id: c.id, taskId: c.task_id, status: c.status, createdAt: c.created_at.toISOString() })),
  };
}
