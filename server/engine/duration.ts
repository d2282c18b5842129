import { badRequest } from "../errors.ts";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The last instant a due date may have: PostgreSQL's timestamptz and JS Dates both hold it. */
const LATEST_DUE_MS = Date.UTC(9999, 11, 31, 23, 59, 59);

/** `now + ms` as a due date, or a 400 naming `field` when that is past year 9999 (a JS Date and PostgreSQL would refuse it). */
export function dueAfter(ms: number, field: string, now = Date.now()): Date {
  const at = now + ms;
  if (!Number.isFinite(at) || at > LATEST_DUE_MS) throw badRequest(`${field} is too long: the due date would be after 9999-12-31`, field);
  return new Date(at);
}

/** `delay` of a trigger: milliseconds, "10s"-style duration, or an ISO date. Returns the due date. */
export function resolveDelay(delay: number | string | undefined, now = new Date()): Date | null {
  if (delay === undefined) return null;
  if (typeof delay === "number") return dueAfter(delay, "options.delay", now.getTime());
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(delay);
  if (match) return dueAfter(Number(match[1]) * UNIT_MS[match[2]], "options.delay", now.getTime());
  const date = new Date(delay);
  if (Number.isNaN(date.getTime())) throw badRequest(`options.delay ${JSON.stringify(delay)} is neither a duration nor a date`, "options.delay");
  return date;
}
