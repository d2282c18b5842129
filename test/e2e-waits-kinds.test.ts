// Every kind of wait through a real CRIU suspend and resume: durations, dates, events (filters,
// duplicates, timeouts), request URLs (hit twice, timeouts), child runs, and rollbacks.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeploymentView } from "../schemas/index.ts";
import { checkpointFiles, getRun, runLogs, runnerPool, sendEvent, trigger, waitForFinal, waitForLog, waitForSuspended } from "./support/e2e-waits.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let stack: TestStack;
let first: DeploymentView;
let second: DeploymentView;
const runners = runnerPool(() => stack);

beforeAll(async () => {
  stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "waits" });
  first = await stack.deploy(join(REPO_ROOT, "test/fixtures/waits"));
  second = await stack.deploy(join(REPO_ROOT, "test/fixtures/waits")); // promoted: children must still run on their parent's version
  await runners.start({ name: "kinds-a" });
  await runners.start({ name: "kinds-b" });
});
afterAll(async () => {
  await runners.killAll();
  await stack?.stop();
});

// Waits of 4 s: each must outlast its dump, which on a loaded host (another group's stacks starting
// beside this file) took over 1 s past the suspend threshold, and 2 s waits then ended in-process.
describe("every wait kind suspends and resumes", () => {
  it("wait.for, twice in one run, leaving no checkpoint behind", async () => {
    const { id } = await trigger(stack, "sleep-for", { ms: 4000, times: 2 });
    await waitForSuspended(stack, id);
    await stack.waitForRun(id, (r) => r.status !== "SUSPENDED", "the first wait to end");
    await waitForSuspended(stack, id);
    const run = await waitForFinal(stack, id);
    // Date.now() inside the restored process includes the time it spent frozen.
    expect((run.output as { elapsedMs: number }).elapsedMs).toBeGreaterThanOrEqual(8000);
    await waitFor("the run's checkpoints to be deleted", async () => (await checkpointFiles(stack)).every((f) => !f.includes(id)), { timeoutMs: 10_000 });
  });

  it("wait.until", async () => {
    // The date is taken when the run starts: one taken here could be past before a slow start reaches the wait.
    const { id } = await trigger(stack, "sleep-until", { inMs: 4000 });
    await waitForSuspended(stack, id);
    const run = await waitForFinal(stack, id);
    const { at, now } = run.output as { at: string; now: string };
    expect(Date.parse(now)).toBeGreaterThanOrEqual(Date.parse(at));
  });

  it("events.waitForEvent: a non-matching event leaves it frozen, a matching one resumes it, a repeat is a duplicate", async () => {
    const { id } = await trigger(stack, "await-event", { event: "order.paid", filter: { order: { id: ["o-1"] }, currency: ["EUR", "USD"] } });
    await waitForSuspended(stack, id);

    const wrongOrder = await sendEvent(stack, "order.paid", { order: { id: "o-2" }, currency: "EUR" });
    const wrongCurrency = await sendEvent(stack, "order.paid", { order: { id: "o-1" }, currency: "GBP" });
    const otherEvent = await sendEvent(stack, "order.shipped", { order: { id: "o-1" }, currency: "EUR" });
    expect([wrongOrder.matchedWaitpoints, wrongCurrency.matchedWaitpoints, otherEvent.matchedWaitpoints]).toEqual([0, 0, 0]);
    expect((await getRun(stack, id)).status).toBe("SUSPENDED");

    const matching = await sendEvent(stack, "order.paid", { order: { id: "o-1" }, currency: "USD", amount: 42 }, "evt-o-1");
    expect(matching).toMatchObject({ id: "evt-o-1", duplicate: false, matchedWaitpoints: 1 });
    const run = await waitForFinal(stack, id);
    expect(run.output).toEqual({ received: { id: "evt-o-1", event: "order.paid", payload: { order: { id: "o-1" }, currency: "USD", amount: 42 } } });

    const again = await sendEvent(stack, "order.paid", { order: { id: "o-1" }, currency: "USD", amount: 42 }, "evt-o-1");
    expect(again).toMatchObject({ id: "evt-o-1", duplicate: true, matchedWaitpoints: 1 });
  });

  it("events.waitForEvent times out with a WaitTimeoutError the task can catch", async () => {
    const { id } = await trigger(stack, "await-event", { event: "never", timeoutSeconds: 4 });
    await waitForSuspended(stack, id);
    const run = await waitForFinal(stack, id);
    expect(run.output).toMatchObject({ timedOut: true, name: "WaitTimeoutError" });
  });

  it("wait.forRequest: the first request resumes the run with its method, headers and body; a second gets 409", async () => {
    const { id } = await trigger(stack, "await-request", {});
    const url = (await waitForLog(stack, id, "request url")).data!.url as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/v1\/waitpoints\/requests\/\S{20,}$/);
    await waitForSuspended(stack, id);

    const hit = await fetch(`${url}?source=test`, { method: "POST", headers: { "content-type": "application/json", "x-signature": "sig-1", authorization: "Bearer secret" }, body: JSON.stringify({ approved: true }) });
    expect(hit.status).toBe(200);
    const second = await fetch(url, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ approved: false }) });
    expect(second.status).toBe(409);
    expect(await second.text()).toMatch(/already/);

    const run = await waitForFinal(stack, id);
    const { request } = run.output as { request: { method: string; headers: Record<string, string>; query: Record<string, string>; body: unknown } };
    expect(request.method).toBe("POST");
    expect(request.headers["x-signature"]).toBe("sig-1");
    expect(request.headers.authorization).toBeUndefined();
    expect(request.query).toEqual({ source: "test" });
    expect(request.body).toEqual({ approved: true });
  });

  // The runner dumps a long wait while the server answers its call; this answer carries the result, so the dump is
  // let go and the process goes on where it was, as if no dump had begun.
  it("wait.forRequest whose request came first: the run goes on in its process with it, no checkpoint taken", async () => {
    const { id } = await trigger(stack, "request-before-wait", {});
    const run = await waitForFinal(stack, id);
    expect(run.output).toEqual({ status: 200, body: { early: true } });
    expect(run.attempts).toBe(1);
    const fromRunner = (await runLogs(stack, id)).filter((line) => line.message.startsWith("[stasis]"));
    expect(fromRunner).toEqual([]);
  });

  it("wait.forRequest times out", async () => {
    const { id } = await trigger(stack, "await-request", { timeoutSeconds: 4 });
    await waitForSuspended(stack, id);
    const run = await waitForFinal(stack, id);
    expect(run.output).toMatchObject({ timedOut: true, name: "WaitTimeoutError" });
  });

  it("triggerAndWait and batchTriggerAndWait: results in item order, a failed child is ok:false, children on the parent's version", async () => {
    expect(second.version).not.toBe(first.version);
    const { id } = await trigger(stack, "parent", { values: [1, 2, 3], failIndex: 1 }, { version: first.version });
    await waitForSuspended(stack, id);
    const run = await waitForFinal(stack, id);
    const output = run.output as { version: string; single: { ok: boolean; output: { doubled: number; version: string } }; unwrapped: unknown; batch: Array<{ ok: boolean; output?: { doubled: number; version: string }; error?: string; id: string }>; unwrapError: string };
    expect(output.version).toBe(first.version);
    expect(output.single).toEqual({ ok: true, output: { doubled: 42, version: first.version } });
    expect(output.unwrapped).toEqual({ doubled: 42, version: first.version });
    expect(output.batch.map((r) => r.ok)).toEqual([true, false, true]);
    expect(output.batch[0]!.output).toEqual({ doubled: 2, version: first.version });
    expect(output.batch[1]!.error).toBe("child 2 was told to fail");
    expect(output.batch[2]!.output).toEqual({ doubled: 6, version: first.version });
    expect(output.unwrapError).toBe("ChildRunFailedError");
    for (const child of output.batch) expect((await getRun(stack, child.id)).parentRunId).toBe(id);
    // It suspended twice (one child, then the batch): neither checkpoint outlives the run.
    await waitFor("the parent's checkpoints to be deleted", async () => (await checkpointFiles(stack)).every((f) => !f.includes(id)), { timeoutMs: 10_000 });
  });

  it("plain fetch with a keep-alive connection pool works across suspends", async () => {
    const server = createServer((req, res) => res.end("ok"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      // 1.5 s: the pooled socket is still open on the server's side; 6 s: the server closed it meanwhile (keepAliveTimeout 5 s).
      const { id } = await trigger(stack, "fetch-around-waits", { url, waits: [1500, 6000, 1500] });
      await waitForSuspended(stack, id);
      const run = await waitForFinal(stack, id);
      expect(run.output).toEqual({ statuses: [200, 200, 200, 200] });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("rollback: compensations run in reverse order, each once, and a failing one is logged while the others still run", async () => {
    const { id } = await trigger(stack, "compensate", { event: "compensate.go" });
    await waitForSuspended(stack, id);
    expect(await sendEvent(stack, "compensate.go", {})).toMatchObject({ matchedWaitpoints: 1 });
    const run = await waitForFinal(stack, id, "FAILED");
    expect(run.error).toMatchObject({ name: "AbortTaskRunError", message: "the purchase cannot go on" });
    const lines = (await runLogs(stack, id)).map((l) => `${l.level} ${l.message}`).filter((m) => /rollback|compensation/.test(m));
    expect(lines).toEqual([
      'info rollback: running "third"',
      "info compensation: third",
      'info rollback: running "second"',
      'error rollback "second" failed: Error: the second compensation broke',
      'info rollback: running "first"',
      "info compensation: first",
    ]);
  });
});
