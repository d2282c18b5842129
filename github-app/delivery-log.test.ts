import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { createDeliveryLog } from "./delivery-log.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "stasis-deliveries-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

it("a delivery is ignored while handled and once handled; a failed one can be claimed again; only successes are written", async () => {
  const file = join(dir, "deliveries.log");
  const log = await createDeliveryLog(file);
  expect(log.claim("a")).toBe(true);
  expect(log.claim("a")).toBe(false);
  log.failed("a");
  expect(log.claim("a")).toBe(true);
  await log.handled("a");
  expect(log.claim("a")).toBe(false);
  expect(log.claim("b")).toBe(true);
  log.failed("b");
  expect(await readFile(file, "utf8")).toBe("a\n");

  const restarted = await createDeliveryLog(file);
  expect(restarted.claim("a")).toBe(false);
  expect(restarted.claim("b")).toBe(true);
});
