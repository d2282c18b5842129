import type { Knex } from "knex";
import type { ScheduleRow } from "../schedules/schedule-store.ts";

export interface DueScheduleRow extends ScheduleRow {
  environment: string;
  archived: boolean;
}

/**
 * The schedules due at `now` (the scheduler's clock, not the database's: tests drive it), locked
 * with `FOR UPDATE SKIP LOCKED` so that server replicas sweeping at once each take disjoint rows and
 * never wait on each other. `next_run_at IS NULL` rows are new declarative schedules that need a
 * first time. The `schedules_due` partial index (next_run_at NULLS FIRST) WHERE active keeps
 * inactive rows out of the scan.
 *
 * The lock alone is not what makes a tick run once: a replica whose clock lags could see a tick as
 * due again after another replica ran it and moved next_run_at on. The unique (schedule_id, tick_at)
 * row in schedule_ticks is: the run is started only by the transaction whose insert of that row
 * succeeded (server/schedules/run-due-schedules.ts).
 */
const DUE_SQL = `
  SELECT s.*, e.slug AS environment, (e.archived_at IS NOT NULL) AS archived
  FROM schedules s
  JOIN environments e ON e.id = s.environment_id
  WHERE s.active AND (s.next_run_at IS NULL OR s.next_run_at <= ?)
  ORDER BY s.next_run_at NULLS FIRST
  LIMIT ?
  FOR UPDATE OF s SKIP LOCKED
`;

export async function lockDueSchedules(trx: Knex.Transaction, now: Date, limit: number): Promise<DueScheduleRow[]> {
  const result = await trx.raw(DUE_SQL, [now, limit]);
  return result.rows as DueScheduleRow[];
}

/** Claims the tick; false when another transaction (a replica, an earlier life of this server) has it. */
export async function insertTick(trx: Knex.Transaction, scheduleId: string, tickAt: Date): Promise<boolean> {
  const result = await trx.raw(`INSERT INTO schedule_ticks (schedule_id, tick_at) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING schedule_id`, [scheduleId, tickAt]);
  return result.rows.length === 1;
}
