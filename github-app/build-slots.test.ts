import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createBuildSlots } from "./build-slots.ts";

/** A job that runs until its signal aborts or `release` is called. */
function controllable() {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let started = false;
  const job = (signal: AbortSignal) => {
    started = true;
    return new Promise<string>((resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      void released.then(() => resolve("done"));
    });
  };
  return { job, release: () => release(), get started() { return started; } };
}

async function until(probe: () => boolean) {
  const deadline = Date.now() + 5000;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(5);
  }
}

describe("build slots", () => {
  it("a newer build for the same environment aborts the older one with the reason", async () => {
    const slots = createBuildSlots({ concurrency: 2, timeoutMs: 60_000 });
    const a = controllable();
    const b = controllable();
    const older = slots.run("repo#production", 1, "commit aaa", a.job);
    const newer = slots.run("repo#production", 2, "commit bbb", b.job);
    await expect(older).rejects.toMatchObject({ name: "SupersededError", message: "superseded by commit bbb" });
    b.release();
    await expect(newer).resolves.toBe("done");
  });

  it("a build that arrives late but was received earlier is refused, not run", async () => {
    const slots = createBuildSlots({ concurrency: 2, timeoutMs: 60_000 });
    const newer = controllable();
    const run = slots.run("repo#production", 5, "commit new", newer.job);
    newer.release();
    await run;
    const late = controllable();
    await expect(slots.run("repo#production", 4, "commit old", late.job)).rejects.toMatchObject({ name: "SupersededError", message: "superseded by commit new" });
    expect(late.started).toBe(false);
  });

  it("other environments are independent; at most `concurrency` builds run at once", async () => {
    const slots = createBuildSlots({ concurrency: 2, timeoutMs: 60_000 });
    const jobs = [controllable(), controllable(), controllable()];
    const runs = jobs.map((j, i) => slots.run(`repo#preview/pr-${i}`, i, `pr ${i}`, j.job));
    await until(() => jobs[0].started && jobs[1].started);
    expect(jobs[2].started).toBe(false);
    expect(slots.running).toBe(2);
    jobs[0].release();
    await until(() => jobs[2].started);
    jobs[1].release();
    jobs[2].release();
    await expect(Promise.all(runs)).resolves.toEqual(["done", "done", "done"]);
    expect(slots.running).toBe(0);
  });

  it("a build past the time limit is aborted with a TimeoutError that says so", async () => {
    const slots = createBuildSlots({ concurrency: 1, timeoutMs: 50 });
    await expect(slots.run("repo#production", 1, "slow", controllable().job)).rejects.toMatchObject({ name: "TimeoutError", message: "the build exceeded its time limit of 0 s" });
  });

  it("cancel aborts the running build of a closed pull request", async () => {
    const slots = createBuildSlots({ concurrency: 1, timeoutMs: 60_000 });
    const run = slots.run("repo#preview/pr-3", 1, "pr 3", controllable().job);
    slots.cancel("repo#preview/pr-3", "the pull request was closed");
    await expect(run).rejects.toMatchObject({ message: "the pull request was closed" });
  });
});
