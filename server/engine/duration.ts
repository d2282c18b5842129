import { badRequest } from "../errors.ts";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `delay` of a trigger: milliseconds, "10s"-style duration, or an ISO date. Returns the due date. */
export function resolveDelay(delay: number | string | undefined, now = new Date()): Date | null {
  if (delay === undefined) return null;
  if (typeof delay === "number") return new Date(now.getTime() + delay);
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(delay);
  if (match) return new Date(now.getTime() + Number(match[1]) * UNIT_MS[match[2]]);
  const date = new Date(delay);
  if (Number.isNaN(date.getTime())) throw badRequest(`options.delay ${JSON.stringify(delay)} is neither a duration nor a date`, "options.delay");
  return date;
}
