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
  const row = (await runsWithContext(db).where("r.id", runId).first()) as RunViewRow | undefined;
  if (!row) throw notFound(`run ${runId} does not exist`, "id");
  const view: RunView & { environmentId: string } = { ...toRunView(row), environmentId: row.environment_id };
  if (withAttempts) {
    const attempts = await db("run_attempts").where({ run_id: runId }).orderBy("number");
    view.attemptDetails = attempts.map((a) => ({
      number: a.number,
      status: a.status,
      runnerId: a.runner_id,
      error: a.error ?? null,
      startedAt: a.started_at.toISOString(),
      endedAt: iso(a.ended_at),
    }));
  }
  return view;
}

export function publicRunView(view: RunView & { environmentId?: string }): RunView {
  const { environmentId: _ignored, ...rest } = view;
  return rest;
}
