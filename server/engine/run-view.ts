import type { Knex } from "knex";
import type { RunView } from "../../schemas/index.ts";
import { notFound } from "../errors.ts";
import { iso, type RunRow } from "./rows.ts";

type RunViewRow = RunRow & { environment: string; version: string | null };

export function runsWithContext(db: Knex | Knex.Transaction) {
  return db("runs as r")
    .join("environments as e", "e.id", "r.environment_id")
    .leftJoin("deployments as d", "d.id", "r.deployment_id")
    .select("r.*", "e.slug as environment", "d.version as version");
}

export function toRunView(row: RunViewRow): RunView {
  const liveMs = row.status === "EXECUTING" && row.execution_started_at ? Date.now() - row.execution_started_at.getTime() : 0;
  const ranAtAll = row.started_at !== null;
  return {
    id: row.id,
    taskId: row.task_id,
    status: row.status,
    environment: row.environment,
    version: row.version,
    payload: row.payload ?? null,
    output: row.output ?? null,
    error: (row.error as RunView["error"]) ?? null,
    attempts: row.attempt_count,
    tags: row.tags ?? [],
    idempotencyKey: row.idempotency_key,
    parentRunId: row.parent_run_id,
    replayOf: row.replay_of,
    createdAt: row.created_at.toISOString(),
    startedAt: iso(row.started_at),
    completedAt: iso(row.completed_at),
    availableAt: row.status === "DELAYED" || row.status === "RETRYING" ? iso(row.available_at) : null,
    durationMs: ranAtAll ? Number(row.execution_ms) + liveMs : null,
  };
}

export async function getRunView(db: Knex | Knex.Transaction, runId: string, withAttempts = true): Promise<RunView & { environmentId: string }> {
  // The attempts come in the same statement as the run, so both are read from one snapshot: two
  // queries could show a run still EXECUTING on its old attempt beside that attempt already LOST.
  const query = runsWithContext(db).where("r.id", runId);
  if (withAttempts) query.select(db.raw(`(SELECT coalesce(json_agg(a ORDER BY a.number), '[]'::json) FROM run_attempts a WHERE a.run_id = r.id) AS attempt_rows`));
  const row = (await query.first()) as (RunViewRow & { attempt_rows?: AttemptRow[] }) | undefined;
  if (!row) throw notFound(`run ${runId} does not exist`, "id");
  const view: RunView & { environmentId: string } = { ...toRunView(row), environmentId: row.environment_id };
  if (row.attempt_rows) {
    view.attemptDetails = row.attempt_rows.map((a) => ({
      number: a.number,
      status: a.status as NonNullable<RunView["attemptDetails"]>[number]["status"],
      runnerId: a.runner_id,
      error: (a.error as NonNullable<RunView["attemptDetails"]>[number]["error"]) ?? null,
      startedAt: new Date(a.started_at).toISOString(),
      endedAt: a.ended_at ? new Date(a.ended_at).toISOString() : null,
    }));
  }
  return view;
}

/** A run_attempts row as json_agg gives it: timestamps as strings. */
interface AttemptRow {
  number: number;
  status: string;
  runner_id: string | null;
  error: unknown;
  started_at: string;
  ended_at: string | null;
}

export function publicRunView(view: RunView & { environmentId?: string }): RunView {
  const { environmentId: _ignored, ...rest } = view;
  return rest;
}
