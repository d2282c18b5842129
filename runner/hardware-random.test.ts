import { describe, expect, it } from "vitest";
import { hardwareRandomFlags, probeHardwareRandomFlags } from "./hardware-random.ts";

describe("hardwareRandomFlags", () => {
  it("are probed while the event loop goes on (a runner's heartbeats do not wait for the probe's Node), and agree with the blocking answer", async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const probed = await probeHardwareRandomFlags();
    clearInterval(timer);
    // The probe starts a Node: tens of milliseconds at least, in which timers fired.
    expect(ticks).toBeGreaterThan(0);
    expect(hardwareRandomFlags()).toEqual(probed);
    expect(await probeHardwareRandomFlags()).toEqual(probed);
  });
});
