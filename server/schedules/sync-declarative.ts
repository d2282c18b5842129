import type { Knex } from "knex";
import type { BuildManifest } from "../../schemas/index.ts";
import { newId } from "../engine/ids.ts";
import type { ScheduleRow } from "./schedule-store.ts";

/**
 * Declarative schedules follow the promoted version: called in the promote's transaction, it makes
 * the environment's DECLARATIVE rows the promoted manifest's `schedule` entries. A task the new
 * version no longer schedules loses its row (no more ticks); a changed cron or zone starts over from
 * the next tick; an unchanged one keeps its next time and its ticks. A new row gets no next time:
 * the scheduler sets it from its own clock at its next sweep.
 */
export async function syncDeclarativeSchedules(trx: Knex.Transaction, environmentId: string, manifest: BuildManifest | null): Promise<void> {
  const wanted = new Map((manifest?.tasks ?? []).filter((t) => t.schedule).map((t) => [t.id, t.schedule!]));
  const rows = (await trx<ScheduleRow>("schedules").where({ environment_id: environmentId, type: "DECLARATIVE" }).forUpdate()) as ScheduleRow[];
  const gone = rows.filter((r) => !wanted.has(r.task_id)).map((r) => r.id);
  if (gone.length) await trx("schedules").whereIn("id", gone).del();
  for (const row of rows) {
    const spec = wanted.get(row.task_id);
    if (!spec) continue;
    if (spec.cron !== row.cron || spec.timezone !== row.timezone) {
      await trx("schedules").where({ id: row.id }).update({ cron: spec.cron, timezone: spec.timezone, next_run_at: null, updated_at: trx.fn.now() });
    }
    wanted.delete(row.task_id);
  }
  for (const [taskId, spec] of wanted) {
    await trx("schedules").insert({ id: newId("sched"), environment_id: environmentId, task_id: taskId, type: "DECLARATIVE", cron: spec.cron, timezone: spec.timezone, next_run_at: null });
  }
}
