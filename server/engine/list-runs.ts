import type { Knex } from "knex";
import type { RunStatus, RunView } from "../../schemas/index.ts";
import { runsWithContext, toRunView } from "./run-view.ts";

export interface ListRunsInput {
  environmentId: string;
  status?: RunStatus;
  task?: string;
  tag?: string;
  version?: string;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

/**
 * Newest first; the cursor is the last run id of the previous page. Every filter has an index that
 * reads runs in seq order (migration 008: status, task, version, tags), so a page costs about its
 * own rows however many runs the environment has. A time range becomes a seq range through
 * runs_list_created (seq grows with created_at), plus the exact created_at test; runs of
 * transactions that overlapped at a range's edge (seq and created_at order differing) may fall out.
 */
export async function listRuns(db: Knex, input: ListRunsInput): Promise<{ data: RunView[]; nextCursor: string | null }> {
  const env = input.environmentId;
  const query = runsWithContext(db).where("r.environment_id", env).orderBy("r.seq", "desc").limit(input.limit + 1);
  if (input.status) query.where("r.status", input.status);
  if (input.task) query.where("r.task_id", input.task);
  if (input.tag) query.whereRaw("r.tags @> ARRAY[?]::text[]", [input.tag]);
  if (input.version) query.where("r.deployment_id", db("deployments").where({ environment_id: env, version: input.version }).select("id").first());
  if (input.to) {
    query.where("r.created_at", "<", input.to);
    query.where("r.seq", "<=", db.raw("coalesce((SELECT seq FROM runs WHERE environment_id = ? AND created_at < ? ORDER BY created_at DESC LIMIT 1), 0)", [env, input.to]));
  }
  if (input.from) {
    query.where("r.created_at", ">=", input.from);
    query.where("r.seq", ">=", db.raw("coalesce((SELECT seq FROM runs WHERE environment_id = ? AND created_at >= ? ORDER BY created_at LIMIT 1), 9223372036854775807)", [env, input.from]));
  }
  if (input.cursor) query.where("r.seq", "<", db("runs").where({ id: input.cursor, environment_id: env }).select("seq"));
  const rows = await query;
  const page = rows.slice(0, input.limit);
  return { data: page.map(toRunView), nextCursor: rows.length > input.limit ? page[page.length - 1].id : null };
}

/**
 * The admin's view: runs of every environment, newest first (by seq, global across environments),
 * each with its project. Only the admin route calls this; an environment's principal never can.
 */
export async function listAllRuns(db: Knex, input: Omit<ListRunsInput, "environmentId" | "version">): Promise<{ data: Array<RunView & { project: string }>; nextCursor: string | null }> {
  const query = runsWithContext(db).join("projects as p", "p.id", "e.project_id").select("p.slug as project").orderBy("r.seq", "desc").limit(input.limit + 1);
  if (input.status) query.where("r.status", input.status);
  if (input.task) query.where("r.task_id", input.task);
  if (input.tag) query.whereRaw("r.tags @> ARRAY[?]::text[]", [input.tag]);
  if (input.from) query.where("r.created_at", ">=", input.from);
  if (input.to) query.where("r.created_at", "<", input.to);
  if (input.cursor) query.where("r.seq", "<", db("runs").where({ id: input.cursor }).select("seq"));
  const rows = await query;
  const page = rows.slice(0, input.limit);
  return { data: page.map((row) => ({ ...toRunView(row), project: row.project as string })), nextCursor: rows.length > input.limit ? page[page.length - 1].id : null };
}
