import type { Knex } from "knex";
import type { CreateScheduleRequest, ScheduleView, UpdateScheduleRequest } from "../../schemas/index.ts";
import { conflict, notFound } from "../errors.ts";
import { systemClock, type Clock } from "../engine/context.ts";
import { newId } from "../engine/ids.ts";
import { notify } from "../engine/notify.ts";
import { parseCron, ticksAfter } from "./cron.ts";

export interface ScheduleRow {
  id: string;
  environment_id: string;
  task_id: string;
  type: "DECLARATIVE" | "IMPERATIVE";
  cron: string;
  timezone: string;
  external_id: string | null;
  deduplication_key: string | null;
  active: boolean;
  next_run_at: Date | null;
  last_tick_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface ScheduleScope {
  environmentId: string;
  environment: string;
}

export function toScheduleView(row: ScheduleRow, clock: Clock = systemClock): ScheduleView {
  // A schedule a promote just made has no next time yet (the scheduler sets it from its clock): show it anyway.
  const next = !row.active ? null : (row.next_run_at ?? ticksAfter(row, clock.now(), 1)[0] ?? null);
  return {
    id: row.id,
    task: row.task_id,
    type: row.type,
    cron: row.cron,
    timezone: row.timezone,
    externalId: row.external_id,
    deduplicationKey: row.deduplication_key,
    active: row.active,
    nextRun: next ? next.toISOString() : null,
    lastRun: row.last_tick_at ? row.last_tick_at.toISOString() : null,
    createdAt: row.created_at.toISOString(),
  };
}

async function findOwn(db: Knex | Knex.Transaction, scope: ScheduleScope, id: string, lock = false): Promise<ScheduleRow> {
  const query = db<ScheduleRow>("schedules").where({ id, environment_id: scope.environmentId });
  const row = lock ? await query.forUpdate().first() : await query.first();
  if (!row) throw notFound(`schedule ${id} does not exist in environment ${scope.environment}`, "id");
  return row;
}

function firstTick(spec: { cron: string; timezone: string }, clock: Clock): Date | null {
  return ticksAfter(spec, clock.now(), 1)[0] ?? null;
}

/** Creates an imperative schedule; the same deduplicationKey again updates that schedule instead. */
export async function createSchedule(db: Knex, scope: ScheduleScope, body: CreateScheduleRequest & { timezone: string }, clock: Clock): Promise<{ view: ScheduleView; created: boolean }> {
  parseCron({ cron: body.cron, timezone: body.timezone });
  return await db.transaction(async (trx) => {
    const values = { task_id: body.task, cron: body.cron, timezone: body.timezone, external_id: body.externalId ?? null };
    if (body.deduplicationKey) {
      const existing = await trx<ScheduleRow>("schedules").where({ environment_id: scope.environmentId, deduplication_key: body.deduplicationKey }).forUpdate().first();
      if (existing) {
        if (existing.type === "DECLARATIVE") throw conflict(`deduplicationKey ${body.deduplicationKey} names a declarative schedule`);
        const changed = existing.cron !== body.cron || existing.timezone !== body.timezone;
        const [row] = await trx("schedules")
          .where({ id: existing.id })
          .update({ ...values, ...(changed && existing.active ? { next_run_at: firstTick(body, clock) } : {}), updated_at: trx.fn.now() })
          .returning("*");
        await notify(trx, "scheduler");
        return { view: toScheduleView(row, clock), created: false };
      }
    }
    const [row] = await trx("schedules")
      .insert({ id: newId("sched"), environment_id: scope.environmentId, type: "IMPERATIVE", ...values, deduplication_key: body.deduplicationKey ?? null, next_run_at: firstTick(body, clock) })
      .onConflict(trx.raw("(environment_id, deduplication_key) WHERE deduplication_key IS NOT NULL"))
      .ignore()
      .returning("*");
    if (!row) throw conflict(`a schedule with deduplicationKey ${body.deduplicationKey} was created at the same time; retry`);
    await notify(trx, "scheduler");
    return { view: toScheduleView(row, clock), created: true };
  });
}

export async function listSchedules(db: Knex, scope: ScheduleScope, query: { task?: string }, clock: Clock): Promise<ScheduleView[]> {
  const q = db<ScheduleRow>("schedules").where({ environment_id: scope.environmentId }).orderBy([{ column: "created_at" }, { column: "id" }]).limit(1000);
  if (query.task) q.andWhere({ task_id: query.task });
  return (await q).map((r) => toScheduleView(r, clock));
}

export async function retrieveSchedule(db: Knex, scope: ScheduleScope, id: string, clock: Clock): Promise<ScheduleView> {
  return toScheduleView(await findOwn(db, scope, id), clock);
}

export async function updateSchedule(db: Knex, scope: ScheduleScope, id: string, body: UpdateScheduleRequest, clock: Clock): Promise<ScheduleView> {
  return await db.transaction(async (trx) => {
    const row = await findOwn(trx, scope, id, true);
    if (row.type === "DECLARATIVE") throw conflict(`schedule ${id} is declared by task ${row.task_id} (schedules.task): change it in code and deploy`, "SCHEDULE_DECLARATIVE");
    const spec = { cron: body.cron ?? row.cron, timezone: body.timezone ?? row.timezone };
    parseCron(spec);
    const changed = spec.cron !== row.cron || spec.timezone !== row.timezone;
    const [updated] = await trx("schedules")
      .where({ id })
      .update({
        ...spec,
        ...(body.task ? { task_id: body.task } : {}),
        ...(body.externalId !== undefined ? { external_id: body.externalId } : {}),
        ...(changed && row.active ? { next_run_at: firstTick(spec, clock) } : {}),
        updated_at: trx.fn.now(),
      })
      .returning("*");
    await notify(trx, "scheduler");
    return toScheduleView(updated, clock);
  });
}

/** Deactivating stops every tick from now on; activating starts again from the next tick (no catch-up). */
export async function setScheduleActive(db: Knex, scope: ScheduleScope, id: string, active: boolean, clock: Clock): Promise<ScheduleView> {
  return await db.transaction(async (trx) => {
    const row = await findOwn(trx, scope, id, true);
    if (row.active === active) return toScheduleView(row, clock);
    const [updated] = await trx("schedules")
      .where({ id, active: row.active })
      .update({ active, next_run_at: active ? firstTick(row, clock) : null, updated_at: trx.fn.now() })
      .returning("*");
    await notify(trx, "scheduler");
    return toScheduleView(updated, clock);
  });
}

export async function deleteSchedule(db: Knex, scope: ScheduleScope, id: string): Promise<{ id: string; deleted: boolean }> {
  return await db.transaction(async (trx) => {
    const row = await findOwn(trx, scope, id, true);
    if (row.type === "DECLARATIVE") throw conflict(`schedule ${id} is declared by task ${row.task_id} (schedules.task): remove it from the code and deploy, or deactivate it`, "SCHEDULE_DECLARATIVE");
    const count = await trx("schedules").where({ id }).del();
    return { id, deleted: count > 0 };
  });
}
