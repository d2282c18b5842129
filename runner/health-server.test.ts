import { describe, expect, it } from "vitest";
import { startHealthServer } from "./health-server.ts";

describe("runner health endpoints", () => {
  it("is live while it answers, ready only when registered and not draining, and /drain starts the drain", async () => {
    let registered = false;
    let draining = false;
    const health = await startHealthServer({ port: 0, host: "127.0.0.1", ready: () => registered && !draining, onDrain: () => (draining = true) });
    const get = async (path: string) => (await fetch(`http://127.0.0.1:${health.port}${path}`)).status;
    try {
      expect(await get("/livez")).toBe(200);
      expect(await get("/readyz")).toBe(503);
      registered = true;
      expect(await get("/readyz")).toBe(200);
      expect(await get("/drain")).toBe(202);
      expect(draining).toBe(true);
      expect(await get("/readyz")).toBe(503);
      expect(await get("/livez")).toBe(200);
      expect(await get("/other")).toBe(404);
    } finally {
      await health.close();
    }
  });
});
