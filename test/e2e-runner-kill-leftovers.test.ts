// A runner killed with SIGKILL takes its task processes with it: the namespace init and node of a
// run it started, of a run it restored from a checkpoint, and any `criu` it was running. And a
// runner started again on the same work dir ends what an earlier runner of that dir left behind.
import { readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { runnerPool, taskProcesses, trigger, waitForFinal, waitForLog } from "./support/e2e-waits.ts";
import { startTime } from "../runner/workload/leftovers.ts";
import { criuProcesses, processesMatching, processStat } from "./support/processes.ts";
import { REPO_ROOT, startTestStack, taskScratchDir, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let stack: TestStack;
let scratch: string;
const runners = runnerPool(() => stack);

beforeAll(async () => {
  scratch = await taskScratchDir("stasis-e2e-leftovers-");
  stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "durability", engine: { leaseMs: 4000, heartbeatIntervalMs: 500 } });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/durability"));
});
afterEach(() => runners.killAll());
afterAll(() => stack?.stop());

/** Everything of this stack's runners still alive: task wrappers and node processes, and criu. */
async function leftovers(): Promise<number[]> {
  return [...(await taskProcesses(stack)), ...(await processesMatching("criu", stack.stateDir))];
}

/** What a leftover is, for the failure's message: its state, parent, PID namespace ids and command line. */
async function describeLeftovers(): Promise<string> {
  const lines = await Promise.all(
    (await leftovers()).map(async (pid) => {
      const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "?";
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0").join(" ").slice(0, 200);
      return `${pid} (${field("State")}, ppid ${field("PPid")}, NSpid ${field("NSpid")}): ${cmdline}`;
    }),
  );
  return lines.join("\n");
}

/** The dir (criu's `-D`, less its `images`) of a `criu <step>` of this stack's run `id`, once that criu is stopped (SIGSTOP) mid-way. */
async function stopCriu(step: "dump" | "restore", workDir: string, id: string): Promise<string | undefined> {
  for (const pid of await criuProcesses(step, workDir, id)) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
    try {
      process.kill(pid, "SIGSTOP");
    } catch {
      continue; // gone meanwhile
    }
    // Stopped, not a zombie: it had not finished.
    const images = argv[argv.indexOf("-D") + 1];
    if ((await processStat(pid))?.state === "T" && images) return dirname(images);
  }
  return undefined;
}

describe("a runner killed with SIGKILL", () => {
  it("leaves no task process, namespace init or criu behind", async () => {
    const runner = await runners.start({ name: "killed" });
    const started = await trigger(stack, "ledger-around-wait", { ledger: join(scratch, "a.ledger"), seconds: 0, gate: join(scratch, "never-a") });
    const restored = await trigger(stack, "ledger-around-wait", { ledger: join(scratch, "b.ledger"), seconds: 2, gate: join(scratch, "never-b") });
    await waitForLog(stack, started.id, "waiting for the gate");
    await waitForLog(stack, restored.id, "waiting for the gate");
    expect((await taskProcesses(stack)).length).toBeGreaterThan(0);

    await runner.kill9();
    // This machine's PID 1 reaps orphans late; a process that lives on is what fails this.
    await waitFor("every process of the killed runner to be gone", async () => (await leftovers()).length === 0, { timeoutMs: 15_000 }).catch(async (error: Error) => {
      throw new Error(`${error.message}: still alive:\n${await describeLeftovers()}`);
    });
  });

  it.each([["dump" as const], ["restore" as const]])("killed in the middle of a criu %s, it leaves no criu and no task behind, and the run still finishes", async (step) => {
    // One host's runner and the one started after it, on one work dir.
    const workDir = join(stack.stateDir, `host-mid-${step}`);
    const runner = await runners.start({ name: `killed-mid-${step}`, args: ["--work-dir", workDir] });
    // A few hundred MB, so that the dump and the restore last long enough to be caught.
    const { id } = await trigger(stack, "ledger-around-wait", { ledger: join(scratch, `mid-${step}.ledger`), seconds: 2, mb: 150 });
    // This run's own dump or restore (its dir names the run: the first test's runs, recovered since, restore here too, and
    // in no time), stopped where it is — so that the runner is killed while criu is in the middle of it, however loaded the host.
    const criuDir = await waitFor(`criu ${step} of ${id} to start`, () => stopCriu(step, workDir, id), { timeoutMs: 60_000, intervalMs: 1 }).catch((error: Error) => {
      // The run may have gone another way (its process kept alive while it waits…): what the runner said of it.
      const said = runner.log().split("\n").filter((line) => line.includes(id));
      throw new Error(`${error.message}; the runner's log of the run:\n${said.join("\n").slice(-4000)}`);
    });
    await runner.kill9();
    await waitFor("every process of the killed runner to be gone", async () => (await leftovers()).length === 0, { timeoutMs: 15_000 }).catch(async (error: Error) => {
      throw new Error(`${error.message}: still alive:\n${await describeLeftovers()}`);
    });
    // The dump or the restore it had under way (the task's memory, in clear) is still on disk, in the killed runner's scratch…
    // (A restore reads the dump's own dir when the wait ended before the store was done, else a restore dir of its own.)
    const [killedScratch, ...others] = await readdir(join(workDir, "scratch"));
    expect(others).toEqual([]);
    const underWay = relative(join(workDir, "scratch", killedScratch!), criuDir);
    expect(underWay).toMatch(new RegExp(`^${step === "dump" ? "checkpoints" : "(checkpoints|restores)"}/${id}-[^/]+$`));
    expect((await readdir(criuDir)).length).toBeGreaterThan(0);
    const next = await runners.start({ name: `takes-over-${step}`, args: ["--work-dir", workDir] });
    // …until a runner starts on that work dir: then only the new runner's own is there.
    expect(await readdir(join(workDir, "scratch"))).toEqual([`${next.child.pid}-${await startTime(next.child.pid!)}`]);
    await waitForFinal(stack, id, "COMPLETED", 90_000);
  });
});
