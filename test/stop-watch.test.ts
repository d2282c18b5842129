// scripts/stop-watch.sh, which scripts/test.sh runs beside the suite: a process group whose every process
// is stopped at once (a stop signal to the whole group, which hung the suite twice) is reported, with
// the stop signals' sender when the kernel's tracing is writable, and continued.
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:fs";
import { access, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { once } from "node:events";
import { afterEach, expect, it } from "vitest";
import { processStat } from "./support/processes.ts";
import { REPO_ROOT } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const started: ChildProcess[] = [];
let watch: ChildProcess | undefined;
afterEach(async () => {
  // SIGTERM: it removes its tracing instance on the way out.
  if (watch && watch.exitCode === null && watch.signalCode === null) {
    const exited = once(watch, "exit");
    watch.kill("SIGTERM");
    await exited;
  }
  for (const child of started.splice(0)) {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // gone
    }
  }
});

/** The state letters (`T` stopped, `S` sleeping…) of the processes of group `pgid`. */
async function groupStates(pgid: number): Promise<string[]> {
  const stats = await Promise.all((await readdir("/proc")).filter((entry) => /^\d+$/.test(entry)).map(processStat));
  return stats.filter((stat) => stat?.pgid === pgid).map((stat) => stat!.state);
}

it("continues a process group whose every process was stopped, naming them and who stopped them", async () => {
  const group = spawn("bash", ["-c", "sleep 300 & sleep 300 & wait"], { detached: true, stdio: "ignore" });
  started.push(group);
  const pgid = group.pid!;
  await waitFor("the group's three processes", async () => (await groupStates(pgid)).length === 3);
  // In a group of its own (detached), as scripts/test.sh starts it with setsid.
  watch = spawn("bash", [join(REPO_ROOT, "scripts/stop-watch.sh"), String(pgid), "0.2"], { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let report = "";
  watch.stderr!.on("data", (chunk: Buffer) => (report += chunk.toString()));
  // Where the kernel's tracing is mounted and writable (root), its tracing of stop signals is on before the stop is sent;
  // a host without tracefs mounted (this kind of VM, fresh) gets the report without the sender.
  const tracing = process.getuid?.() === 0 && (await access("/sys/kernel/tracing/instances", constants.W_OK).then(() => true, () => false));
  const instance = `/sys/kernel/tracing/instances/stasis-stop-watch-${watch.pid}`;
  const enable = `${instance}/events/signal/signal_generate/enable`;
  if (tracing) await waitFor("the watch's tracing to be on", async () => (await readFile(enable, "utf8").catch(() => "")).trim() === "1");

  process.kill(-pgid, "SIGSTOP");
  await waitFor("the stop report", () => report.includes(`every process of group ${pgid} is stopped`), { timeoutMs: 10_000 });
  await waitFor("the group to run again", async () => (await groupStates(pgid)).every((state) => state !== "T"), { timeoutMs: 10_000 });
  expect(report).toMatch(/stop-watch: +\d+ +\d+ +T +sleep 300/);
  if (tracing) {
    expect(report).toMatch(/signal_generate: sig=19 .*comm=sleep/);
    // Its tracing instance goes with it.
    const exited = once(watch, "exit");
    watch.kill("SIGTERM");
    await exited;
    expect(await readdir(instance).catch(() => null)).toBeNull();
  }
});
