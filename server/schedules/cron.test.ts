import { describe, expect, it } from "vitest";
import { StasisError } from "../errors.ts";
import { latestTickAtOrBefore, parseCron, ticksAfter } from "./cron.ts";

const utc = (cron: string) => ({ cron, timezone: "UTC" });

describe("cron helpers", () => {
  it("the latest tick includes a tick exactly at now, and ticks after exclude it", () => {
    expect(latestTickAtOrBefore(utc("* * * * *"), new Date("2026-01-01T00:05:00.000Z"))?.toISOString()).toBe("2026-01-01T00:05:00.000Z");
    expect(latestTickAtOrBefore(utc("* * * * *"), new Date("2026-01-01T00:05:59.999Z"))?.toISOString()).toBe("2026-01-01T00:05:00.000Z");
    expect(latestTickAtOrBefore(utc("*/2 * * * * *"), new Date("2026-01-01T00:05:03.500Z"))?.toISOString()).toBe("2026-01-01T00:05:02.000Z");
    expect(ticksAfter(utc("* * * * *"), new Date("2026-01-01T00:05:00.000Z"), 2).map((d) => d.toISOString())).toEqual(["2026-01-01T00:06:00.000Z", "2026-01-01T00:07:00.000Z"]);
  });

  it("refuses what does not parse or never fires, naming the field", () => {
    const refusal = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return error as StasisError;
      }
      throw new Error("expected a refusal");
    };
    expect(refusal(() => parseCron(utc("61 * * * *")))).toMatchObject({ status: 400, field: "cron", message: expect.stringContaining("Invalid value for minute: 61") });
    expect(refusal(() => parseCron(utc("0 0 31 2 *")))).toMatchObject({ field: "cron", message: expect.stringContaining("never matches") });
    expect(refusal(() => parseCron({ cron: "* * * * *", timezone: "Nowhere/Atlantis" }))).toMatchObject({ field: "timezone" });
  });
});
