// Webhook and scheduled tasks as a user has them: a project built from `trigger/` (the README's Stripe
// example), deployed to a real stack with a runner, a signed Stripe event and a real GitHub payload
// posted to the URLs `stasis webhooks list` prints, the task code reading the typed events; the
// CLI's listings; and the build refusing an unknown event or a bad cron, naming them.
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Webhooks } from "@octokit/webhooks";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunView } from "../schemas/index.ts";
import { runCli, type CliResult } from "./support/cli.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const FIXTURE = resolve(import.meta.dirname, "fixtures/webhooks");
const STRIPE_SECRET = "whsec_e2e_0123456789abcdef";
const GITHUB_SECRET = "github-e2e-0123456789";
const githubExamples = createRequire(import.meta.url)("@octokit/webhooks-examples") as Array<{ name: string; examples: Array<Record<string, any>> }>;
let stack: TestStack;
let cwd: string;

function stasis(args: string[]): Promise<CliResult> {
  return runCli(args, { cwd, env: { STASIS_API_URL: stack.apiUrl, STASIS_API_KEY: stack.keys.production, STASIS_ADMIN_TOKEN: undefined } });
}

async function finished(id: string): Promise<RunView> {
  return await waitFor(`run ${id} to finish`, async () => {
    const run = await stack.api<RunView>("GET", `/api/v1/runs/${id}`, undefined, "production");
    return ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT"].includes(run.status) ? run : null;
  }, { timeoutMs: 90_000 });
}

beforeAll(async () => {
  stack = await startTestStack({ project: "hooks", runners: 1 });
  cwd = await mkdtemp(join(tmpdir(), "stasis-hooks-"));
  await stack.deploy(FIXTURE, { environment: "production" });
  const set = await stasis(["env", "set", `STRIPE_WEBHOOK_SECRET=${STRIPE_SECRET}`, `GITHUB_WEBHOOK_SECRET=${GITHUB_SECRET}`]);
  expect(set.code, set.stderr).toBe(0);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

describe("webhook tasks", () => {
  let sources: Array<{ id: string; url: string; secretSet: boolean; tasks: string[] }>;
  const urlOf = (id: string) => sources.find((s) => s.id === id)!.url;

  it("stasis webhooks list prints each source's URL and what to paste into the provider", async () => {
    const json = await stasis(["webhooks", "list", "--json"]);
    expect(json.code, json.stderr).toBe(0);
    sources = JSON.parse(json.stdout).data;
    expect(sources.map((s) => [s.id, s.url, s.secretSet, s.tasks])).toEqual([
      ["github", `${stack.apiUrl}/api/v1/webhooks/hooks/production/github`, true, ["issue-opened"]],
      ["stripe", `${stack.apiUrl}/api/v1/webhooks/hooks/production/stripe`, true, ["subscription-plan-changed"]],
    ]);
    const text = await stasis(["webhooks", "list"]);
    expect(text.stdout).toContain(`Endpoint URL: ${stack.apiUrl}/api/v1/webhooks/hooks/production/stripe`);
    expect(text.stdout).toContain("Events to send: customer.subscription.updated");
    expect(text.stdout).toContain("Events: issues");
    expect(text.stdout + text.stderr).not.toContain(STRIPE_SECRET);
  });

  it("a signed Stripe event runs the task, which reads the typed event", async () => {
    const event = {
      id: "evt_e2e_1",
      object: "event",
      type: "customer.subscription.updated",
      created: 1_780_000_000,
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      api_version: "2026-01-28.clover",
      data: { object: { id: "sub_e2e", object: "subscription", status: "active" }, previous_attributes: { status: "trialing" } },
    };
    const body = JSON.stringify(event);
    const started = performance.now();
    const response = await fetch(urlOf("stripe"), { method: "POST", body, headers: { "content-type": "application/json", "stripe-signature": Stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_SECRET }) } });
    const answer = (await response.json()) as { runs: string[] };
    const answeredMs = Math.round(performance.now() - started);
    console.log(`stripe delivery answered in ${answeredMs} ms`);
    expect(response.status, JSON.stringify(answer)).toBe(200);
    // The answer never waits for the run (GitHub gives 10 s, Stripe a little more); generous for a loaded machine.
    expect(answeredMs).toBeLessThan(5_000);
    const run = await finished(answer.runs[0]!);
    expect(run.status).toBe("COMPLETED");
    expect(run.output).toEqual({ eventId: "evt_e2e_1", type: "customer.subscription.updated", subscription: "sub_e2e", status: "active", was: "trialing" });

    const redelivered = await fetch(urlOf("stripe"), { method: "POST", body, headers: { "stripe-signature": Stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_SECRET }) } });
    expect(((await redelivered.json()) as { duplicate: boolean }).duplicate).toBe(true);

    const deliveries = await stasis(["webhooks", "deliveries", "stripe", "--json"]);
    expect(deliveries.code, deliveries.stderr).toBe(0);
    expect(JSON.parse(deliveries.stdout).data.map((d: { status: string; runs: string[] }) => [d.status, d.runs])).toEqual([
      ["DUPLICATE", []],
      ["ACCEPTED", [run.id]],
    ]);
    const table = await stasis(["webhooks", "deliveries", "stripe"]);
    expect(table.stdout).toMatch(/ACCEPTED\s+customer\.subscription\.updated\s+evt_e2e_1\s+verified\s+run_/);
  });

  it("a real GitHub issues.opened payload runs the task with { id, name, payload }", async () => {
    const payload = githubExamples.find((d) => d.name === "issues")!.examples.find((e) => e.action === "opened")!;
    const body = JSON.stringify(payload);
    const response = await fetch(urlOf("github"), {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "x-github-event": "issues", "x-github-delivery": "e2e-delivery-1", "x-hub-signature-256": await new Webhooks({ secret: GITHUB_SECRET }).sign(body) },
    });
    const answer = (await response.json()) as { runs: string[] };
    expect(response.status, JSON.stringify(answer)).toBe(200);
    const run = await finished(answer.runs[0]!);
    expect(run.output).toEqual({ delivery: "e2e-delivery-1", action: "opened", title: payload.issue.title, repository: payload.repository.full_name });
  });
});

describe("scheduled tasks", () => {
  it("stasis schedules list shows the declared schedule with its next run", async () => {
    const json = await stasis(["schedules", "list", "--json"]);
    expect(json.code, json.stderr).toBe(0);
    const [schedule] = JSON.parse(json.stdout).data;
    expect(schedule).toMatchObject({ task: "daily-report", type: "DECLARATIVE", cron: "0 9 * * 1-5", timezone: "Europe/Paris", active: true });
    const next = new Date(schedule.nextRun);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/Paris", hour: "2-digit", minute: "2-digit", weekday: "short" }).format(next)).toMatch(/^(Mon|Tue|Wed|Thu|Fri) 09:00$/);
    const text = await stasis(["schedules", "list"]);
    expect(text.stdout).toMatch(/daily-report\s+declarative\s+0 9 \* \* 1-5\s+Europe\/Paris\s+\d{4}-/);
  });
});

describe("the build checks what it can", () => {
  async function deployVariant(source: string): Promise<Error | null> {
    const dir = await mkdtemp(join(tmpdir(), "stasis-hooks-bad-"));
    try {
      await cp(FIXTURE, dir, { recursive: true });
      await writeFile(join(dir, "trigger/billing.ts"), source);
      return await stack.deploy(dir, { environment: "staging" }).then(() => null, (e: Error) => e);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it("an event Stripe never sends fails the build naming the task, the event and the nearest names", async () => {
    const error = await deployVariant(`import { webhooks } from "stasis/sdk";\nexport const t = webhooks.stripe({ id: "stripe" }).task({ id: "typo", on: "customer.subscription.updatd" as any, run: async () => null });\n`);
    expect(error?.message).toContain('task "typo"');
    expect(error?.message).toContain('"customer.subscription.updatd" is not a stripe event');
    expect(error?.message).toContain('"customer.subscription.updated"');
  });

  it("a cron or time zone that does not parse fails the build naming it", async () => {
    const cron = await deployVariant(`import { schedules } from "stasis/sdk";\nexport const t = schedules.task({ id: "nightly", cron: "0 25 * * *", run: async () => null });\n`);
    expect(cron?.message).toContain('schedules.task "nightly": cron "0 25 * * *" is not a cron expression');
    const zone = await deployVariant(`import { schedules } from "stasis/sdk";\nexport const t = schedules.task({ id: "nightly", cron: "0 2 * * *", timezone: "Europe/Pariss", run: async () => null });\n`);
    expect(zone?.message).toContain('timezone "Europe/Pariss" is not an IANA time zone');
    const deployments = await stack.api<{ data?: unknown[] } | unknown[]>("GET", "/api/v1/deployments", undefined, "staging");
    expect(Array.isArray(deployments) ? deployments : (deployments as { data: unknown[] }).data).toEqual([]);
  });
});
