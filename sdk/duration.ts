/** `{ seconds: 10 }`, `{ minutes: 5, seconds: 30 }` … as used by `wait.for` and timeouts. */
export interface DurationObject {
  seconds?: number;
  minutes?: number;
  hours?: number;
  days?: number;
}

/** A duration: an object, milliseconds, or a string like "500ms", "10s", "5m", "2h", "1d". */
export type Duration = DurationObject | number | string;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export function durationToMs(duration: Duration): number {
  if (typeof duration === "number") {
    if (!Number.isFinite(duration) || duration < 0) throw new TypeError(`duration must be a non-negative number of ms, got ${duration}`);
    return Math.round(duration);
  }
  if (typeof duration === "string") {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(duration.trim());
    if (!match) throw new TypeError(`duration "${duration}" is not like 500ms, 10s, 5m, 2h or 1d`);
    return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
  }
  const { seconds = 0, minutes = 0, hours = 0, days = 0 } = duration;
  const ms = ((days * 24 + hours) * 60 + minutes) * 60_000 + seconds * 1000;
  if (!Number.isFinite(ms) || ms < 0) throw new TypeError(`duration ${JSON.stringify(duration)} is not a non-negative time`);
  return Math.round(ms);
}
