// The fault injector: one fault at a time, at seeded random gaps, until the fault window closes.
// Each fault ends with the stack whole again (a killed runner or server restarted, PostgreSQL
// started, the checkpoint disk freed), so "time since the last fault" starts from a healed stack.
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Rng } from "./prng.ts";
import { alive, cmdline, descendantsOf, listProcesses } from "./procfs.ts";
import type { Stack } from "./stack.ts";

const execFileAsync = promisify(execFile);

export type FaultKind = "runner-kill" | "runner-kill-criu" | "server-kill" | "postgres-stop" | "disk-fill";
export type FaultName = "runner-kill" | "runner-kill-mid-dump" | "runner-kill-mid-restore" | "server-kill" | "postgres-stop" | "disk-fill";

export interface FaultOptions {
  kinds: Partial<Record<FaultKind, number>>;
  /** Gap between the end of one fault and the start of the next, ms. */
  gapMs: [number, number];
  /** How long a killed process stays down, ms. */
  downMs: [number, number];
  /** How long the checkpoint disk stays full, ms. */
  diskFullMs: [number, number];
  /** How long to watch for a criu child before settling for a plain kill, ms. */
  criuWatchMs: number;
}

export interface FaultEvent {
  name: FaultName;
  target: string;
  at: number;
  healedAt: number;
  detail?: string;
}

export interface OrphanCheck {
  runner: string;
  /** Processes under the killed runner that were still alive after the replacement runner started. */
  orphans: number;
  comms: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** When the last of `pids` was seen gone (polled every 2 ms), or null when one outlived the deadline. */
async function waitUntilGone(pids: number[], deadlineMs: number): Promise<number | null> {
  const deadline = Date.now() + deadlineMs;
  while (pids.some(alive)) {
    if (Date.now() > deadline) return null;
    await sleep(2);
  }
  return Date.now();
}

export function createFaultInjector(stack: Stack, rng: Rng, options: FaultOptions, log: (line: string) => void) {
  const events: FaultEvent[] = [];
  const orphanChecks: OrphanCheck[] = [];
  const harnessErrors: string[] = [];
  const between = ([a, b]: [number, number]) => rng.int(a, b);
  const liveRunners = () => stack.runners.map((r, i) => ({ r, i })).filter(({ r }) => r.child);

  const killRunnerAndRestart = async (i: number, name: FaultName, detail?: string) => {
    const runner = stack.runners[i];
    const before = await listProcesses();
    const pid = runner.child?.pid;
    const tree = pid ? descendantsOf(before, pid) : [];
    const at = Date.now();
    const runnerId = runner.runnerId;
    stack.killRunner(i);
    log(`fault: ${name} ${runner.name}${detail ? ` (${detail})` : ""}`);
    // The crash is over when the last process under the runner is gone: a task lives on until the
    // parent-death signals reach it through unshare and its namespace's init.
    const [goneAt] = await Promise.all([waitUntilGone(tree, 10_000), sleep(between(options.downMs))]);
    const killed = runnerId ? stack.killedRunners.get(runnerId) : undefined;
    if (killed && goneAt !== null) killed.goneAt = goneAt;
    await restartRunner(i);
    const left = tree.filter(alive);
    const comms = left.map((p) => before.find((b) => b.pid === p)?.comm ?? "?");
    orphanChecks.push({ runner: runner.name, orphans: left.length, comms });
    events.push({ name, target: runner.name, at, healedAt: Date.now(), detail });
  };

  const restartRunner = async (i: number) => {
    for (let tries = 0; ; tries++) {
      try {
        return await stack.startRunner(i);
      } catch (error) {
        harnessErrors.push(`restart ${stack.runners[i].name}: ${(error as Error).message}`);
        if (tries >= 3) throw error;
        await sleep(2000);
      }
    }
  };

  /** Watches for a `criu` process under any runner; kills that runner while criu runs. */
  const killDuringCriu = async () => {
    const deadline = Date.now() + options.criuWatchMs;
    while (Date.now() < deadline) {
      const all = await listProcesses();
      for (const { r, i } of liveRunners()) {
        // /usr/local/bin/criu may be a wrapper that execs a loader: look at the command line, not comm.
        for (const pid of descendantsOf(all, r.child!.pid!)) {
          const args = ` ${await cmdline(pid)} `;
          if (!/criu/.test(args)) continue;
          const phase = / restore /.test(args) ? "runner-kill-mid-restore" : / dump /.test(args) ? "runner-kill-mid-dump" : null;
          if (phase) return killRunnerAndRestart(i, phase, `criu pid ${pid}`);
        }
      }
      await sleep(20);
    }
    const live = liveRunners();
    if (live.length) await killRunnerAndRestart(rng.pick(live).i, "runner-kill", "no criu seen in the watch window");
  };

  const fillDisk = async () => {
    const filler = join(stack.checkpointDir, ".chaos-filler");
    const at = Date.now();
    let detail = "";
    // Asynchronously: filling GiBs takes seconds under load, and a blocked harness would stall the
    // ledger (its clock stamps every record) and the event sender's requests in flight.
    try {
      const free = Number((await execFileAsync("df", ["--output=avail", "-B1", stack.checkpointDir])).stdout.split("\n")[1]);
      await execFileAsync("fallocate", ["-l", String(free), filler]);
      detail = `${Math.round(free / 1048576)} MiB`;
    } catch (error) {
      // fallocate may refuse the last blocks: fill what is left with dd until ENOSPC.
      try { await execFileAsync("dd", ["if=/dev/zero", `of=${filler}`, "bs=1M", "oflag=append", "conv=notrunc"]); } catch { /* ENOSPC is the point */ }
      detail = `dd (${(error as Error).message.split("\n")[0]})`;
    }
    log(`fault: disk-fill ${stack.checkpointDir} ${detail}`);
    await sleep(between(options.diskFullMs));
    rmSync(filler, { force: true });
    events.push({ name: "disk-fill", target: "checkpoints", at, healedAt: Date.now(), detail });
  };

  const inject = async (kind: FaultKind) => {
    switch (kind) {
      case "runner-kill": {
        const live = liveRunners();
        if (live.length) await killRunnerAndRestart(rng.pick(live).i, "runner-kill");
        return;
      }
      case "runner-kill-criu":
        return killDuringCriu();
      case "server-kill": {
        const i = rng.int(0, stack.servers.length - 1);
        const at = Date.now();
        stack.killServer(i);
        log(`fault: server-kill ${stack.servers[i].name}`);
        await sleep(between(options.downMs));
        await stack.startServer(i);
        events.push({ name: "server-kill", target: stack.servers[i].name, at, healedAt: Date.now() });
        return;
      }
      case "postgres-stop": {
        const at = Date.now();
        await stack.stopPostgres();
        log("fault: postgres-stop (immediate)");
        await sleep(between(options.downMs) + 2000);
        await stack.startPostgres();
        events.push({ name: "postgres-stop", target: "postgres", at, healedAt: Date.now() });
        return;
      }
      case "disk-fill":
        if (stack.checkpointTmpfs) await fillDisk();
        return;
    }
  };

  /** Injects faults until `endAt`; resolves when the last one has healed. */
  const run = async (endAt: number, first?: FaultKind[]) => {
    const queue = [...(first ?? [])];
    while (Date.now() < endAt) {
      await sleep(between(options.gapMs));
      if (Date.now() >= endAt) break;
      const kind = queue.shift() ?? rng.weighted(options.kinds);
      try {
        await inject(kind);
      } catch (error) {
        harnessErrors.push(`${kind}: ${(error as Error).message}`);
        log(`fault ${kind} could not heal: ${(error as Error).message}`);
      }
    }
  };

  const counts = () => {
    const c: Record<string, number> = {};
    for (const e of events) c[e.name] = (c[e.name] ?? 0) + 1;
    return c;
  };

  return { run, events, orphanChecks, harnessErrors, counts, lastHealedAt: () => Math.max(0, ...events.map((e) => e.healedAt)) };
}
