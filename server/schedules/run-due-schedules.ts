import type { SchedulePayload } from "../../schemas/index.ts";
import { inTransaction } from "../db/transaction.ts";
import { systemClock, type Engine } from "../engine/context.ts";
import { triggerRun } from "../engine/trigger-run.ts";
import { insertTick, lockDueSchedules, type DueScheduleRow } from "../sql/lock-due-schedules.ts";
import { toError } from "../errors.ts";
import { latestTickAtOrBefore, ticksAfter } from "./cron.ts";

const BATCH = 100;
const UPCOMING = 5;

/**
 * Starts the run of every due schedule tick, once. Catch-up rule: when the server was down (or the
 * schedule was otherwise late) across several ticks, only the latest tick that has passed runs, once;
 * the older missed ticks are skipped (logged), never replayed in a burst. `next_run_at` then moves to
 * the first tick after now.
 */
export async function runDueSchedules(engine: Engine): Promise<number> {
  const clock = engine.clock ?? systemClock;
  let started = 0;
  for (;;) {
    const now = clock.now();
    const batch = await inTransaction(engine.db, async (trx) => {
      const rows = await lockDueSchedules(trx, now, BATCH);
      for (const row of rows) {
        const next = ticksAfter(row, now, 1)[0] ?? null;
        if (row.next_run_at === null) {
          await trx("schedules").where({ id: row.id }).update({ next_run_at: next });
          continue;
        }
        const tick = latestTickAtOrBefore(row, now);
        if (tick && tick.getTime() >= row.next_run_at.getTime() && !row.archived && (await insertTick(trx, row.id, tick))) {
          if (tick.getTime() > row.next_run_at.getTime()) {
            engine.logger.info({ scheduleId: row.id, task: row.task_id, firstMissed: row.next_run_at.toISOString(), running: tick.toISOString() }, "schedule missed ticks; running only the latest");
          }
          const outcome = await startTickRun(engine, trx, row, tick);
          await trx("schedule_ticks").where({ schedule_id: row.id, tick_at: tick }).update(outcome);
          if (outcome.run_id) started++;
          await trx("schedules").where({ id: row.id }).update({ next_run_at: next, last_tick_at: tick });
        } else {
          await trx("schedules").where({ id: row.id }).update({ next_run_at: next });
        }
      }
      return rows.length;
    });
    if (batch < BATCH) return started;
  }
}

async function startTickRun(engine: Engine, trx: import("knex").Knex.Transaction, row: DueScheduleRow, tick: Date): Promise<{ run_id: string | null; error: string | null }> {
  const payload: SchedulePayload = {
    scheduleId: row.id,
    type: row.type,
    timestamp: tick.toISOString(),
    lastTimestamp: row.last_tick_at ? row.last_tick_at.toISOString() : null,
    timezone: row.timezone,
    upcoming: ticksAfter(row, tick, UPCOMING).map((d) => d.toISOString()),
    externalId: row.external_id,
  };
  try {
    const run = await triggerRun(
      trx,
      { environmentId: row.environment_id, environment: row.environment, archived: row.archived },
      { taskId: row.task_id, payload, options: { idempotencyKey: `schedule/${row.id}/${payload.timestamp}`, tags: [`schedule:${row.id}`] } },
      engine.config.pendingVersionTtlMs,
    );
    return { run_id: run.id, error: null };
  } catch (thrown) {
    // A task no deployment has (an imperative schedule's typo): the tick is spent, the schedule goes on.
    const error = toError(thrown);
    engine.logger.warn({ scheduleId: row.id, task: row.task_id, err: error }, "schedule tick could not start its run");
    return { run_id: null, error: error.message };
  }
}
