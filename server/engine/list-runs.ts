import type { Knex } from "knex";
import type { RunStatus, RunView } from "../../schemas/index.ts";
import { runsWithContext, toRunView } from "./run-view.ts";

export interface ListRunsInput {
  environmentId: string;
  status?: RunStatus;
  task?: string;
  tag?: string;
  limit: number;
  cursor?: string;
}

/** Newest first; the cursor is the last run id of the previous page. */
export async function listRuns(db: Knex, input: ListRunsInput): Promise<{ data: RunView[]; nextCursor: string | null }> {
  const query = runsWithContext(db).where("r.environment_id", input.environmentId).orderBy("r.seq", "desc").limit(input.limit + 1);
  if (input.status) query.where("r.status", input.status);
  if (input.task) query.where("r.task_id", input.task);
  if (input.tag) query.whereRaw("? = ANY(r.tags)", [input.tag]);
  if (input.cursor) query.where("r.seq", "<", db("runs").where({ id: input.cursor, environment_id: input.environmentId }).select("seq"));
  const rows = await query;
  const page = rows.slice(0, input.limit);
  return { data: page.map(toRunView), nextCursor: rows.length > input.limit ? page[page.length - 1].id : null };
}
