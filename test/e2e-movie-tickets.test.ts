// The seed's movie-ticket purchase end to end with real CRIU: the run freezes while it waits for
// checkout, its process is gone, and it resumes on another runner process.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startStandInServices, type StandInServices } from "../examples/movie-tickets/services/stand-in.ts";
import { checkpointFiles, getRun, runnerPool, sendEvent, taskProcesses, trigger, waitForFinal, waitForLog, waitForSuspended } from "./support/e2e-waits.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

let stack: TestStack;
let services: StandInServices;
const runners = runnerPool(() => stack);

beforeAll(async () => {
  services = await startStandInServices();
  stack = await startTestStack({ runners: 0, suspendThresholdMs: 1000, project: "movie-tickets" });
  await stack.deploy(join(REPO_ROOT, "examples/movie-tickets"));
});

afterEach(() => runners.killAll());

afterAll(async () => {
  await stack?.stop();
  await services?.close();
});

/** Reserves, suspends on runner A; A stops; returns the run id, its reservation and A's id. */
async function purchaseUntilSuspended() {
  const taskEnv = { MOVIE_SERVICES_URL: services.url };
  const runnerA = await runners.start({ name: "runner-a", taskEnv });
  const { id } = await trigger(stack, "purchase-ticket", { showId: "dune-2000", seats: ["F7", "F8"], email: "ada@example.com" });
  const reserved = await waitForLog(stack, id, "seats reserved");
  const reservationId = reserved.data!.reservationId as string;

  const suspended = await waitForSuspended(stack, id);
  expect(await taskProcesses(stack)).toEqual([]);
  expect((await checkpointFiles(stack)).filter((f) => f.endsWith(".tar.zst.sealed"))).toHaveLength(1);
  const suspendedOn = suspended.attemptDetails!.at(-1)!.runnerId;
  expect(suspendedOn).toBe(runnerA.runnerId);

  await runnerA.stop();
  const runnerB = await runners.start({ name: "runner-b", taskEnv });
  return { id, reservationId, runnerA, runnerB };
}

describe("movie tickets with real CRIU", () => {
  it("freezes while waiting for checkout and finishes the purchase on another runner", async () => {
    services.calls.length = 0;
    const { id, reservationId, runnerA, runnerB } = await purchaseUntilSuspended();
    // The run is still frozen: nothing was charged yet.
    expect(services.calls.map((c) => c.path)).toEqual(["/reservations"]);

    const sent = await sendEvent(stack, "checkout", { reservationId, cardToken: "tok_visa" });
    expect(sent.matchedWaitpoints).toBe(1);
    const run = await waitForFinal(stack, id, "COMPLETED");

    expect(run.output).toMatchObject({ reservationId, seats: ["F7", "F8"] });
    expect(run.attemptDetails!.at(-1)!.runnerId).toBe(runnerB.runnerId);
    expect(runnerB.runnerId).not.toBe(runnerA.runnerId);
    expect(services.calls.map((c) => c.path)).toEqual(["/reservations", "/payments", "/tickets", "/emails"]);
    expect(services.calls[1]!.body).toMatchObject({ amount: 25, cardToken: "tok_visa", reference: id });
    // The finished run's checkpoint is gone, and so is its process.
    await waitFor("the checkpoint to be deleted", async () => (await checkpointFiles(stack)).length === 0);
    expect(await taskProcesses(stack)).toEqual([]);
    await runnerB.stop();
  });

  it("runs the compensations in reverse order when the email service fails after the restore", async () => {
    services.calls.length = 0;
    services.failEmails(true);
    try {
      const { id, reservationId, runnerB } = await purchaseUntilSuspended();
      await sendEvent(stack, "checkout", { reservationId, cardToken: "tok_visa" });
      const run = await waitForFinal(stack, id, "FAILED");
      expect(run.error?.message).toContain("/emails answered 503");

      const paths = services.calls.map((c) => c.path);
      const paymentId = /pay_\w+/.exec(paths.find((p) => p.startsWith("/payments/")) ?? "")?.[0];
      expect(paymentId).toBeDefined();
      expect(paths).toEqual(["/reservations", "/payments", "/tickets", "/emails", `/payments/${paymentId}/refund`, `/reservations/${reservationId}/release`]);
      expect((await getRun(stack, id)).attemptDetails!.at(-1)!.runnerId).toBe(runnerB.runnerId);
      await runnerB.stop();
    } finally {
      services.failEmails(false);
    }
  });

  it("the Quickstart's buy-ticket.ts shows the run frozen, then completes the purchase", async () => {
    services.calls.length = 0;
    const runner = await runners.start({ name: "runner-quickstart", taskEnv: { MOVIE_SERVICES_URL: services.url } });
    const env = { ...process.env, STASIS_API_URL: stack.apiUrl, STASIS_API_KEY: stack.keys.development };
    const tsx = join(REPO_ROOT, "node_modules/.bin/tsx");
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile(tsx, ["src/buy-ticket.ts"], { cwd: join(REPO_ROOT, "examples/movie-tickets"), env, timeout: 90_000 }, (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr })),
    );
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^frozen — no process is running for \S+; it resumes/m);
    expect(out.stdout).toMatch(/^COMPLETED:/m);
    // The event went out only after the freeze: the charge came after the restore.
    expect(out.stdout.indexOf("frozen —")).toBeLessThan(out.stdout.indexOf("sending the checkout event"));
    expect(services.calls.map((c) => c.path)).toEqual(["/reservations", "/payments", "/tickets", "/emails"]);
    await runner.stop();
  });
});
