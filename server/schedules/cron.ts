import { Cron } from "croner";
import { badRequest } from "../errors.ts";

/**
 * Cron arithmetic, all through croner (5 fields, or 6 with seconds first). Daylight-saving changes
 * follow croner's rules: a local time skipped by a spring-forward runs at the first instant after the
 * gap, and a wall-clock time that occurs twice in a fall-back hour runs once for a fixed time of day
 * (`30 2 * * *`) but on both passes for a pattern that spans the hour (`*\/30 * * * *`).
 */
export interface CronSpec {
  cron: string;
  timezone: string;
}

/** A valid IANA zone for this runtime, or a 400 naming the field. */
export function checkTimezone(timezone: string, field = "timezone"): void {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    throw badRequest(`${field}: ${JSON.stringify(timezone)} is not an IANA time zone (like UTC or Europe/Paris)`, field);
  }
}

/** Parses the pair (a 400 naming the field when either is wrong) and makes sure it ever fires. */
export function parseCron(spec: CronSpec, fields: { cron: string; timezone: string } = { cron: "cron", timezone: "timezone" }): Cron {
  checkTimezone(spec.timezone, fields.timezone);
  let cron: Cron;
  try {
    cron = new Cron(spec.cron, { timezone: spec.timezone, paused: true });
  } catch (error) {
    throw badRequest(`${fields.cron}: ${JSON.stringify(spec.cron)} is not a cron expression: ${(error as Error).message.replace(/^CronPattern: /, "")}`, fields.cron);
  }
  if (!cron.nextRun()) throw badRequest(`${fields.cron}: ${JSON.stringify(spec.cron)} never matches a date`, fields.cron);
  return cron;
}

function cronOf(spec: CronSpec): Cron {
  return new Cron(spec.cron, { timezone: spec.timezone, paused: true });
}

/** The `n` ticks strictly after `after`. */
export function ticksAfter(spec: CronSpec, after: Date, n: number): Date[] {
  return cronOf(spec).nextRuns(n, after);
}

/** The latest tick at or before `now`, or null. */
export function latestTickAtOrBefore(spec: CronSpec, now: Date): Date | null {
  const cron = cronOf(spec);
  const next = cron.nextRun(new Date(now.getTime() - 1));
  if (next && next.getTime() <= now.getTime()) return next;
  return cron.previousRuns(1, now)[0] ?? null;
}
