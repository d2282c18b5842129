import { describe, expect, it } from "vitest";
import { coalesce } from "./coalesce.ts";

/** A flush that answers only when the test says so, recording each batch it was given. */
function gatedFlush() {
  const batches: number[][] = [];
  const gates: Array<() => void> = [];
  const flush = async (items: number[]) => {
    batches.push(items);
    await new Promise<void>((resolve) => gates.push(resolve));
    if (items.includes(-1)) throw new Error("bad batch");
    return items.map((n) => n * 10);
  };
  const open = async () => {
    while (gates.length === 0) await new Promise((r) => setImmediate(r));
    gates.shift()!();
  };
  return { batches, flush, open };
}

describe("coalesce", () => {
  it("flushes an item at once when idle, and groups the items that arrive during a flush into the next one", async () => {
    const g = gatedFlush();
    const c = coalesce(g.flush, { maxItems: 100 });
    const first = c.add(1);
    const later = [c.add(2), c.add(3), c.add(4)];
    expect(g.batches).toEqual([[1]]);
    await g.open();
    expect(await first).toBe(10);
    await g.open();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
    expect(g.batches).toEqual([[1], [2, 3, 4]]);
  });

  it("splits by count and by weight, keeping the order", async () => {
    const g = gatedFlush();
    const c = coalesce(g.flush, { maxItems: 2, maxWeight: 10, weight: (n) => n });
    const all = [c.add(1), c.add(2), c.add(3), c.add(9), c.add(11)];
    for (let i = 0; i < 4; i++) await g.open();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 90, 110]);
    expect(g.batches).toEqual([[1], [2, 3], [9], [11]]);
  });

  it("a failed flush rejects only its own items", async () => {
    const g = gatedFlush();
    const c = coalesce(g.flush, { maxItems: 100 });
    const first = c.add(1);
    const bad = Promise.allSettled([c.add(-1), c.add(2)]);
    await g.open();
    await g.open();
    const next = c.add(5);
    await g.open();
    expect(await first).toBe(10);
    expect((await bad).map((r) => (r.status === "rejected" ? (r.reason as Error).message : r.value))).toEqual(["bad batch", "bad batch"]);
    expect(await next).toBe(50);
  });
});
