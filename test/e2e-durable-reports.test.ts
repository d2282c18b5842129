// A run's results survive the server going away while the runner reports them: the runner retries
// every report (end, suspend, wait) until the server has it, the server answers a repeated report
// as it answered the first, and the checkpoint a run resumed from is kept until its end is on record.
// The server is taken away through a proxy between the runner and the real server process.
import { readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { checkpointFiles, getRun, runnerPool, trigger, waitForFinal, waitForLog, waitForSuspended } from "./support/e2e-waits.ts";
import { startFaultProxy, type FaultProxy } from "./support/fault-proxy.ts";
import { REPO_ROOT, startTestStack, taskScratchDir, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let stack: TestStack;
let proxy: FaultProxy;
let scratch: string;
const runners = runnerPool(() => stack);
const LEASE_MS = 6000;

beforeAll(async () => {
  scratch = await taskScratchDir("stasis-e2e-durable-");
  stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "durability", engine: { leaseMs: LEASE_MS, heartbeatIntervalMs: 500 } });
  await stack.deploy(join(REPO_ROOT, "test/fixtures/durability"));
  proxy = await startFaultProxy(stack.apiUrl);
});
afterEach(async () => {
  proxy.clear();
  await runners.killAll();
});
afterAll(async () => {
  await proxy?.close();
  await stack?.stop();
});

/** The side effects a run recorded, as "<step> attempt=<n>". */
async function ledgerOf(ledger: string, runId: string): Promise<string[]> {
  const text = await readFile(ledger, "utf8").catch(() => "");
  return text.split("\n").filter((l) => l.startsWith(`${runId} `)).map((l) => l.slice(runId.length + 1));
}

const ownCheckpoints = async (runId: string) => (await checkpointFiles(stack)).filter((f) => f.includes(runId));

/** Starts a run that records "before", waits `seconds` (frozen when ≥ 1 s), records "after", then waits for its gate. */
async function startGatedRun(name: string, seconds: number) {
  const ledger = join(scratch, `${name}.ledger`);
  const gate = join(scratch, `${name}.gate`);
  const { id } = await trigger(stack, "ledger-around-wait", { ledger, seconds, gate });
  return { id, ledger, gate };
}

describe("the runner's reports outlive a server that goes away", () => {
  it.each([
    ["the server is down (connections cut)", "down"],
    ["the server answers 500 (its database is down)", "error500"],
  ] as const)("%s while a resumed run ends: the end is reported once it is back, and the code after the wait ran once", async (_, fault) => {
    const runner = await runners.start({ name: `ends-${fault}`, serverUrl: proxy.url });
    const { id, ledger, gate } = await startGatedRun(`end-${fault}`, 4);
    await waitForSuspended(stack, id);
    await waitForLog(stack, id, "waiting for the gate");
    expect(await ownCheckpoints(id)).toHaveLength(1);

    // Everything from the runner fails — heartbeats too — for most of a lease, while the run ends.
    proxy.fail(/^\/api\/v1\/runner\//, fault);
    await writeFile(gate, "open");
    await waitFor("the runner to retry the end report", () => runner.log().includes("could not report the end of the run; retrying"), { timeoutMs: 20_000 });
    await waitFor("the outage to last half a lease", () => proxy.broken.filter((b) => b.path.endsWith("/complete")).length >= 5, { timeoutMs: 20_000 });
    proxy.clear();

    const run = await waitForFinal(stack, id);
    expect(run.attemptDetails!.map((a) => a.status)).toEqual(["COMPLETED"]);
    expect(await ledgerOf(ledger, id)).toEqual(["before attempt=1", "after attempt=1"]);
    // The server has the end: the checkpoint the run resumed from is of no use any more.
    await waitFor("the resumed-from checkpoint to be deleted", async () => (await ownCheckpoints(id)).length === 0, { timeoutMs: 10_000 });
  });

  it("an end report the server applied but whose answer was lost is answered as applied when repeated", async () => {
    const runner = await runners.start({ name: "lost-answer", serverUrl: proxy.url });
    const { id, ledger, gate } = await startGatedRun("lost-answer", 4);
    await waitForSuspended(stack, id);
    await waitForLog(stack, id, "waiting for the gate");
    proxy.fail(/\/complete$/, "lose-answer", 1);
    await writeFile(gate, "open");

    const run = await waitForFinal(stack, id);
    await waitFor("the runner to get an answer to its repeated end report", async () => (await ownCheckpoints(id)).length === 0, { timeoutMs: 10_000 });
    expect(proxy.broken).toEqual([{ path: `/api/v1/runner/runs/${id}/complete`, fault: "lose-answer" }]);
    expect(runner.log()).toContain("could not report the end of the run; retrying");
    expect(runner.log()).not.toMatch(/"msg":"could not report the end of the run"/);
    expect(run.attemptDetails!.map((a) => a.status)).toEqual(["COMPLETED"]);
    expect(await ledgerOf(ledger, id)).toEqual(["before attempt=1", "after attempt=1"]);
  });

  it("a wait and a suspend whose answers were lost are repeated without harm: the run freezes once and completes once", async () => {
    await runners.start({ name: "lost-suspend", serverUrl: proxy.url });
    proxy.fail(/\/waits$/, "lose-answer", 1);
    proxy.fail(/\/suspend$/, "lose-answer", 1);
    // Long enough that the checkpoint is stored (and the suspend reported) before the wait ends, even under load.
    const { id, ledger, gate } = await startGatedRun("lost-suspend", 6);
    await writeFile(gate, "open");

    const run = await waitForFinal(stack, id);
    expect(proxy.broken.map((b) => b.path.split("/").at(-1))).toEqual(["waits", "suspend"]);
    expect(run.attemptDetails!.map((a) => a.status)).toEqual(["COMPLETED"]);
    expect(await ledgerOf(ledger, id)).toEqual(["before attempt=1", "after attempt=1"]);
  });

  it("a resumed run whose end could not be reported before its lease ran out is recovered from its checkpoint, not from scratch", async () => {
    const runner = await runners.start({ name: "loses-lease", serverUrl: proxy.url });
    const { id, ledger, gate } = await startGatedRun("lease-runs-out", 4);
    const before = await waitForLog(stack, id, "before the wait");
    await waitForSuspended(stack, id);
    await waitForLog(stack, id, "waiting for the gate");

    // Down for longer than a lease: the server recovers the run meanwhile; the runner gives up.
    proxy.fail(/^\/api\/v1\/runner\//, "down");
    await writeFile(gate, "open");
    await stack.waitForRun(id, (r) => (r.attemptDetails ?? []).some((a) => a.status === "LOST"), "the server to recover the run", 30_000);
    await waitFor("the runner to give up the end report", () => runner.log().includes('"msg":"could not report the end of the run"'), { timeoutMs: 30_000 });
    proxy.clear();

    const run = await waitForFinal(stack, id);
    expect(run.attemptDetails!.map((a) => a.status)).toEqual(["LOST", "COMPLETED"]);
    // Resumed from the checkpoint: the value from before the wait is the same and "before" ran once.
    expect((run.output as { random: number }).random).toBe(before.data!.random);
    // The code after the wait ran again in the new attempt (the restored process still sees attempt 1's context).
    expect(await ledgerOf(ledger, id)).toEqual(["before attempt=1", "after attempt=1", "after attempt=1"]);
    expect((await getRun(stack, id)).status).toBe("COMPLETED");
  });

  it("a continue lost with a poll's answer (the server died mid-reply): the run waiting in-process asks for its wait's result and goes on", async () => {
    await runners.start({ name: "lost-continue", serverUrl: proxy.url, suspendThresholdMs: 60_000 });
    const { id, ledger, gate } = await startGatedRun("lost-continue", 3);
    await writeFile(gate, "open");
    await stack.waitForRun(id, (r) => r.status === "WAITING", "the run to wait in-process");
    // Every poll is applied by the server and its answer lost: the one carrying the continue moves the run to
    // EXECUTING on the server, and the runner never hears of it.
    proxy.fail(/^\/api\/v1\/runner\/poll$/, "lose-answer");
    // EXECUTING can last less than one look of this wait: the runner asks for its wait's result as soon as the
    // poll fails, and the run is over a moment later.
    await stack.waitForRun(id, (r) => r.status === "EXECUTING" || r.status === "COMPLETED", "the server to hand out the continue", 30_000);
    proxy.clear();

    const run = await waitForFinal(stack, id);
    expect(run.attemptDetails!.map((a) => a.status)).toEqual(["COMPLETED"]);
    expect(await ledgerOf(ledger, id)).toEqual(["before attempt=1", "after attempt=1"]);
  });

  it("a run claimed by a poll whose answer was lost is queued again at the runner's next poll, not when its lease runs out", async () => {
    const ledger = join(scratch, "lost-claim.ledger");
    const { id } = await trigger(stack, "ledger-around-wait", { ledger, seconds: 0 });
    // The runner's first poll claims the queued run on the server; its answer never arrives.
    proxy.fail(/^\/api\/v1\/runner\/poll$/, "lose-answer", 1);
    const runner = await runners.start({ name: "lost-claim", serverUrl: proxy.url });

    const run = await waitForFinal(stack, id);
    expect(proxy.broken).toEqual([{ path: "/api/v1/runner/poll", fault: "lose-answer" }]);
    expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([
      ["LOST", runner.runnerId],
      ["COMPLETED", runner.runnerId],
    ]);
    // Given back by the next poll (not by the lease sweep), and the task ran once.
    expect(run.attemptDetails![0]!.error?.message).toBe("the claim's answer never reached the runner; it started nothing");
    expect(await ledgerOf(ledger, id)).toEqual(["before attempt=2", "after attempt=2"]);
  });

  it("a heartbeat answer about a run's previous lease does not stop its next attempt claimed here meanwhile", async () => {
    const runner = await runners.start({ name: "stale-beat", serverUrl: proxy.url });
    // Heartbeats reach the server 1.5 s late: one naming attempt 1's lease is answered "lost" after attempt 2 was claimed here.
    proxy.fail(/^\/api\/v1\/runner\/heartbeat$/, "delay");
    const ledger = join(scratch, "stale-beat.ledger");
    const gate = join(scratch, "stale-beat.gate");
    const { id } = await trigger(stack, "fails-once-then-gate", { ledger, gate });
    await waitForLog(stack, id, "waiting for the gate");
    // Long enough for every heartbeat sent before attempt 2 was claimed to be answered.
    await waitFor("three delayed heartbeats after attempt 2 began", () => proxy.broken.filter((b) => b.path.endsWith("/heartbeat")).length >= 12, { timeoutMs: 20_000 });
    await writeFile(gate, "open");

    const run = await waitForFinal(stack, id);
    expect(run.attemptDetails!.map((a) => [a.status, a.runnerId])).toEqual([
      ["FAILED", runner.runnerId],
      ["COMPLETED", runner.runnerId],
    ]);
    expect(await ledgerOf(ledger, id)).toEqual(["ran attempt=1", "ran attempt=2", "done attempt=2"]);
    expect(runner.log()).not.toContain("gave this run's lease to someone else");
  });
});
