import { Cron } from "croner";
import type { CreateScheduleRequest, SchedulePayload, ScheduleView, UpdateScheduleRequest } from "../schemas/index.ts";
import { apiRequest } from "./api-client.ts";
import { defineTask, type TaskDefinition, type TaskOptions, type TaskRunArgs } from "./task.ts";

export type { SchedulePayload, ScheduleView };

/** Checks the pair as the server will (croner, IANA zone), so a typo fails the build naming the task. */
function checkCron(where: string, cron: string, timezone: string): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw new Error(`${where}: timezone ${JSON.stringify(timezone)} is not an IANA time zone (like UTC or Europe/Paris)`);
  }
  try {
    new Cron(cron, { timezone, paused: true });
  } catch (error) {
    throw new Error(`${where}: cron ${JSON.stringify(cron)} is not a cron expression: ${(error as Error).message.replace(/^CronPattern: /, "")}`);
  }
}

export interface ScheduledTaskOptions<TOutput> extends Omit<TaskOptions<SchedulePayload, TOutput>, "run"> {
  /** Declarative schedule (5 fields, or 6 with seconds first); leave out for a task only imperative schedules start. */
  cron?: string;
  /** IANA zone the cron is read in; default UTC. */
  timezone?: string;
  run: (payload: SchedulePayload, args: TaskRunArgs) => Promise<TOutput>;
}

const path = (id?: string) => `/api/v1/schedules${id ? `/${encodeURIComponent(id)}` : ""}`;

export const schedules = {
  /**
   * A task that runs on a schedule. With `cron`, the schedule is declarative: it exists while a
   * version that declares it is promoted. Each tick starts one run with `{ timestamp, lastTimestamp,
   * timezone, upcoming }`; after downtime only the latest missed tick runs.
   */
  task<TOutput = unknown>(options: ScheduledTaskOptions<TOutput>): TaskDefinition<SchedulePayload, TOutput> {
    const { cron, timezone, ...rest } = options;
    if (cron === undefined) {
      if (timezone !== undefined) throw new Error(`schedules.task "${options.id}": timezone without cron`);
      return defineTask(rest);
    }
    const zone = timezone ?? "UTC";
    checkCron(`schedules.task "${options.id}"`, cron, zone);
    return defineTask(rest, { schedule: { cron, timezone: zone } });
  },
  /** An imperative schedule from app code; the same `deduplicationKey` again updates that one. */
  create(options: CreateScheduleRequest): Promise<ScheduleView> {
    return apiRequest<ScheduleView>("POST", path(), options);
  },
  async list(query: { task?: string } = {}): Promise<ScheduleView[]> {
    const qs = query.task ? `?task=${encodeURIComponent(query.task)}` : "";
    return (await apiRequest<{ data: ScheduleView[] }>("GET", `${path()}${qs}`)).data;
  },
  retrieve(id: string): Promise<ScheduleView> {
    return apiRequest<ScheduleView>("GET", path(id));
  },
  update(id: string, changes: UpdateScheduleRequest): Promise<ScheduleView> {
    return apiRequest<ScheduleView>("PUT", path(id), changes);
  },
  deactivate(id: string): Promise<ScheduleView> {
    return apiRequest<ScheduleView>("POST", `${path(id)}/deactivate`, {});
  },
  activate(id: string): Promise<ScheduleView> {
    return apiRequest<ScheduleView>("POST", `${path(id)}/activate`, {});
  },
  del(id: string): Promise<{ id: string; deleted: boolean }> {
    return apiRequest("DELETE", path(id));
  },
  /** Same as `del`. */
  delete(id: string): Promise<{ id: string; deleted: boolean }> {
    return apiRequest("DELETE", path(id));
  },
};
