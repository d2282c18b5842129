import { describe, expect, it } from "vitest";
import { createSlots } from "./slots.ts";

describe("runner slots", () => {
  it("free slots are capacity minus busy ones minus what the long poll offered; none while draining", () => {
    let busy = 1;
    const slots = createSlots(4, () => busy);
    expect(slots.free()).toBe(3);
    slots.offer(3);
    expect(slots.free()).toBe(0);
    busy = 0; // a run finished while the long poll waits: one slot for a quick poll
    expect(slots.free()).toBe(1);
    slots.offerEnded();
    expect(slots.free()).toBe(4);
    slots.drain();
    expect([slots.free(), slots.draining]).toEqual([0, true]);
  });
});
