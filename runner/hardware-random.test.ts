import { describe, expect, it, vi } from "vitest";

describe("hardwareRandomFlags", () => {
  it("are probed while the event loop goes on (a runner's heartbeats do not wait for the probe's Node), and agree with the blocking answer", async () => {
    // A fresh copy of the module: light test files share one process, and another file may have probed already.
    vi.resetModules();
    const { hardwareRandomFlags, probeHardwareRandomFlags } = await import("./hardware-random.ts");
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
