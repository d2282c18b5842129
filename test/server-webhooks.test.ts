// Webhook deliveries against the real server and PostgreSQL: Stripe events signed with the `stripe`
// package's own test header, real GitHub payloads from @octokit/webhooks-examples signed as GitHub
// signs them, and a generic HMAC sender. Each verified first delivery starts one run per listening
// task with the event as its payload; redeliveries, tampered or stale signatures start nothing.
import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import { Webhooks } from "@octokit/webhooks";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploy, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";

const githubExamples = createRequire(import.meta.url)("@octokit/webhooks-examples") as Array<{ name: string; examples: Array<Record<string, unknown>> }>;
const STRIPE_SECRET = "whsec_test_0123456789abcdef";
const GITHUB_SECRET = "github-secret-0123456789";
const ACME_SECRET = "acme-secret-0123456789";
let f: ServerFixture;

function subscriptionUpdated(id: string): Stripe.CustomerSubscriptionUpdatedEvent {
  return {
    id,
    object: "event",
    api_version: "2026-01-28.clover",
    created: 1_780_000_000,
    livemode: false,
    pending_webhooks: 1,
    request: { id: "req_123", idempotency_key: null },
    type: "customer.subscription.updated",
    data: {
      object: { id: "sub_123", object: "subscription", customer: "cus_123", status: "active", items: { object: "list", data: [], has_more: false, url: "/v1/subscription_items" } } as unknown as Stripe.Subscription,
      previous_attributes: { status: "trialing" },
    },
  };
}

async function postStripe(body: string, options: { timestamp?: number; signedBody?: string; env?: string; source?: string } = {}) {
  const signature = Stripe.webhooks.generateTestHeaderString({ payload: options.signedBody ?? body, secret: STRIPE_SECRET, timestamp: options.timestamp });
  return await post(`/api/v1/webhooks/demo/${options.env ?? "production"}/${options.source ?? "stripe"}`, body, { "stripe-signature": signature, "content-type": "application/json" });
}

async function post(url: string, body: string | Buffer, headers: Record<string, string>) {
  const res = await f.server.app.inject({ method: "POST", url, payload: body, headers });
  return { status: res.statusCode, body: JSON.parse(res.body) };
}

async function runs(task: string): Promise<Array<{ id: string; payload: any; idempotencyKey: string; tags: string[] }>> {
  const res = await f.call("GET", `/api/v1/runs?task=${task}&limit=200`);
  return res.body.data;
}

async function deliveries(source: string) {
  const res = await f.call("GET", `/api/v1/webhook-sources/${source}/deliveries?limit=200`);
  expect(res.status).toBe(200);
  return res.body.data as Array<{ id: string; status: string; verified: boolean; failure: string | null; event: string | null; eventId: string | null; runs: string[] }>;
}

const stripeSource = { source: "stripe", provider: "stripe" as const, secretEnv: "STRIPE_WEBHOOK_SECRET" };
const githubSource = { source: "github", provider: "github" as const, secretEnv: "GITHUB_WEBHOOK_SECRET" };
const acmeSource = { source: "acme", provider: "http" as const, secretEnv: "ACME_WEBHOOK_SECRET", http: { verify: { header: "X-Acme-Signature", algorithm: "sha256" as const, encoding: "hex" as const, prefix: "sha256=" }, idHeader: "X-Acme-Delivery" } };

beforeAll(async () => {
  f = await startServerFixture();
  await deploy(f, [
    { id: "subscription-plan-changed", webhook: { ...stripeSource, events: ["customer.subscription.updated"] } },
    { id: "billing-audit", webhook: { ...stripeSource, events: ["customer.subscription.updated", "invoice.paid"] } },
    { id: "invoice-paid", webhook: { ...stripeSource, events: ["invoice.paid"] } },
    { id: "issue-opened", webhook: { ...githubSource, events: ["issues.opened"] } },
    { id: "any-issue", webhook: { ...githubSource, events: ["issues"] } },
    { id: "on-push", webhook: { ...githubSource, events: ["push"] } },
    { id: "acme-order", webhook: { ...acmeSource, events: ["order.created"] } },
  ]);
  for (const env of ["production"]) {
    const res = await f.call("POST", "/api/v1/envvars", { key: f.keys[env], body: { variables: { STRIPE_WEBHOOK_SECRET: STRIPE_SECRET, GITHUB_WEBHOOK_SECRET: GITHUB_SECRET, ACME_WEBHOOK_SECRET: ACME_SECRET } } });
    expect(res.status).toBe(200);
  }
});

afterAll(async () => {
  await f?.close();
});

describe("Stripe", () => {
  it("a signed event starts every task listening to its type, with the event as payload and its id as idempotency key", async () => {
    const event = subscriptionUpdated("evt_1");
    const res = await postStripe(JSON.stringify(event));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ id: "evt_1", duplicate: false });
    expect(res.body.runs).toHaveLength(2);
    const [changed] = await runs("subscription-plan-changed");
    const [audit] = await runs("billing-audit");
    expect(res.body.runs.sort()).toEqual([changed!.id, audit!.id].sort());
    expect(changed!.payload).toEqual(event);
    expect(audit!.payload).toEqual(event);
    expect(changed!.idempotencyKey).toBe("webhook/stripe/evt_1");
    expect(changed!.tags).toEqual(["webhook:stripe"]);
    expect(await runs("invoice-paid")).toEqual([]);
  });

  it("a redelivery of the same event (newly signed) answers 200 and starts nothing", async () => {
    const res = await postStripe(JSON.stringify(subscriptionUpdated("evt_1")));
    expect(res.status).toBe(200);
    expect(res.body.duplicate).toBe(true);
    expect(await runs("subscription-plan-changed")).toHaveLength(1);
    expect(await runs("billing-audit")).toHaveLength(1);
    const [latest] = await deliveries("stripe");
    expect(latest).toMatchObject({ status: "DUPLICATE", eventId: "evt_1", verified: true });
  });

  it("a tampered body is refused, recorded without its body, and starts nothing", async () => {
    const signed = JSON.stringify(subscriptionUpdated("evt_2"));
    const tampered = signed.replace('"cus_123"', '"cus_666"');
    const res = await postStripe(tampered, { signedBody: signed });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("WEBHOOK_SIGNATURE_INVALID");
    expect(res.body.error.message).toContain("Stripe-Signature does not match");
    expect(await runs("subscription-plan-changed")).toHaveLength(1);
    const [latest] = await deliveries("stripe");
    expect(latest).toMatchObject({ status: "REJECTED", verified: false, eventId: null, runs: [] });
    const row = await f.database.db("webhook_deliveries").where({ id: latest!.id }).first("payload", "failure");
    expect(row.payload).toBeNull();
    expect(row.failure).not.toContain(STRIPE_SECRET);
  });

  it("a stale timestamp (a replay an hour later) is refused and starts nothing", async () => {
    const res = await postStripe(JSON.stringify(subscriptionUpdated("evt_3")), { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("WEBHOOK_SIGNATURE_STALE");
    expect(res.body.error.message).toContain("300 s");
    expect((await runs("billing-audit")).length).toBe(1);
  });

  it("no signature, a body over the limit, an unknown source, environment or project: a clear error each, no run", async () => {
    const body = JSON.stringify(subscriptionUpdated("evt_4"));
    const unsigned = await post("/api/v1/webhooks/demo/production/stripe", body, { "content-type": "application/json" });
    expect(unsigned.status).toBe(401);
    expect(unsigned.body.error).toMatchObject({ code: "WEBHOOK_SIGNATURE_MISSING", message: expect.stringContaining("Stripe-Signature") });

    const huge = await postStripe(JSON.stringify({ ...subscriptionUpdated("evt_5"), filler: "x".repeat(4 * 1024 * 1024) }));
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe("WEBHOOK_BODY_TOO_LARGE");

    const source = await postStripe(body, { source: "stripe-eu" });
    expect(source.status).toBe(404);
    expect(source.body.error).toMatchObject({ field: "sourceId", message: expect.stringContaining("webhook source stripe-eu") });
    const env = await postStripe(body, { env: "qa" });
    expect(env.status).toBe(404);
    expect(env.body.error.message).toContain("environment qa does not exist");
    const project = await post("/api/v1/webhooks/nope/production/stripe", body, {});
    expect(project.body.error.message).toContain("project nope does not exist");

    // staging has no promoted version at all
    const staging = await postStripe(body, { env: "staging" });
    expect(staging.status).toBe(404);
    expect(staging.body.error.message).toContain("nothing is promoted");
    expect(await runs("subscription-plan-changed")).toHaveLength(1);
  });

  it("a signing secret the environment lacks is named (503, so the provider retries), never guessed", async () => {
    await deploy(f, [{ id: "staging-sub", webhook: { ...stripeSource, events: ["customer.subscription.updated"] } }], { key: f.keys.staging });
    const res = await postStripe(JSON.stringify(subscriptionUpdated("evt_6")), { env: "staging" });
    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ code: "WEBHOOK_SECRET_MISSING", message: expect.stringContaining("STRIPE_WEBHOOK_SECRET is not set in demo/staging") });
  });
});

describe("GitHub", () => {
  const example = (name: string, action?: string) => {
    const def = githubExamples.find((d) => d.name === name)!;
    return (action ? def.examples.find((e) => e.action === action) : def.examples[0]) as Record<string, unknown>;
  };
  const postGithub = async (event: string, payload: unknown, delivery: string, options: { secret?: string; tamper?: boolean } = {}) => {
    const body = JSON.stringify(payload);
    const signature = await new Webhooks({ secret: options.secret ?? GITHUB_SECRET }).sign(body);
    return await post("/api/v1/webhooks/demo/production/github", options.tamper ? body.replace(/"id":\d/, '"id":9') : body, {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": delivery,
      "x-hub-signature-256": signature,
    });
  };

  it("a real issues.opened payload starts the tasks on issues.opened and on issues, with { id, name, payload }", async () => {
    const payload = example("issues", "opened");
    const res = await postGithub("issues", payload, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.runs).toHaveLength(2);
    const [opened] = await runs("issue-opened");
    const [any] = await runs("any-issue");
    expect(opened!.payload).toEqual({ id: "72d3162e-cc78-11e3-81ab-4c9367dc0958", name: "issues", payload });
    expect(any!.payload.payload.action).toBe("opened");
    expect(await runs("on-push")).toEqual([]);
  });

  it("an issues.edited payload starts only the task on every issues event; a push starts the push task", async () => {
    expect((await postGithub("issues", example("issues", "edited"), "delivery-edited")).body.runs).toHaveLength(1);
    expect(await runs("issue-opened")).toHaveLength(1);
    expect(await runs("any-issue")).toHaveLength(2);
    const push = example("push");
    const res = await postGithub("push", push, "delivery-push");
    expect(res.body.runs).toHaveLength(1);
    expect((await runs("on-push"))[0]!.payload.payload).toEqual(push);
  });

  it("a redelivery (same X-GitHub-Delivery) starts nothing; a wrong secret or a changed body starts nothing", async () => {
    const redelivered = await postGithub("push", example("push"), "delivery-push");
    expect(redelivered.body).toMatchObject({ duplicate: true });
    const wrong = await postGithub("push", example("push"), "delivery-wrong", { secret: "not-the-secret" });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.message).toContain("X-Hub-Signature-256 does not match");
    const tampered = await postGithub("push", example("push"), "delivery-tampered", { tamper: true });
    expect(tampered.status).toBe(401);
    expect(await runs("on-push")).toHaveLength(1);
    expect((await deliveries("github")).map((d) => d.status)).toEqual(["REJECTED", "REJECTED", "DUPLICATE", "ACCEPTED", "ACCEPTED", "ACCEPTED"]);
  });
});

describe("generic HTTP sources", () => {
  const sign = (body: string, secret = ACME_SECRET) => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

  it("an HMAC-signed delivery starts the task for its type; a bad HMAC and a redelivery start nothing", async () => {
    const body = JSON.stringify({ type: "order.created", order: { id: 7 } });
    const ok = await post("/api/v1/webhooks/demo/production/acme", body, { "x-acme-signature": sign(body), "x-acme-delivery": "d-1", "content-type": "application/json" });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const [run] = await runs("acme-order");
    expect(run!.payload).toEqual({ id: "d-1", event: "order.created", body: { type: "order.created", order: { id: 7 } } });
    const again = await post("/api/v1/webhooks/demo/production/acme", body, { "x-acme-signature": sign(body), "x-acme-delivery": "d-1" });
    expect(again.body.duplicate).toBe(true);
    const bad = await post("/api/v1/webhooks/demo/production/acme", body, { "x-acme-signature": sign(body, "guess"), "x-acme-delivery": "d-2" });
    expect(bad.status).toBe(401);
    expect(bad.body.error.message).toContain("X-Acme-Signature");
    const notJson = "not json";
    const garbage = await post("/api/v1/webhooks/demo/production/acme", notJson, { "x-acme-signature": sign(notJson), "x-acme-delivery": "d-3", "content-type": "text/plain" });
    expect(garbage.status).toBe(400);
    expect(garbage.body.error.code).toBe("WEBHOOK_BODY_INVALID");
    expect(await runs("acme-order")).toHaveLength(1);
  });
});

describe("listing", () => {
  it("webhook-sources lists each source's URL, events, tasks, whether its secret is set and what to paste into the provider", async () => {
    const res = await f.call("GET", "/api/v1/webhook-sources");
    expect(res.status).toBe(200);
    const stripe = res.body.data.find((s: { id: string }) => s.id === "stripe");
    expect(stripe).toMatchObject({
      provider: "stripe",
      url: "http://127.0.0.1:9999/api/v1/webhooks/demo/production/stripe",
      events: ["customer.subscription.updated", "invoice.paid"],
      tasks: ["subscription-plan-changed", "billing-audit", "invoice-paid"],
      secretEnv: "STRIPE_WEBHOOK_SECRET",
      secretSet: true,
    });
    expect(stripe.setup.join("\n")).toContain("Endpoint URL: http://127.0.0.1:9999/api/v1/webhooks/demo/production/stripe");
    expect(JSON.stringify(res.body)).not.toContain(STRIPE_SECRET);
  });

  it("deliveries of a source: newest first, with verification and the runs each started", async () => {
    const list = await deliveries("stripe");
    const accepted = list.find((d) => d.status === "ACCEPTED")!;
    expect(accepted).toMatchObject({ eventId: "evt_1", event: "customer.subscription.updated", verified: true, failure: null });
    expect(accepted.runs).toHaveLength(2);
    expect(list.filter((d) => d.status === "REJECTED").map((d) => d.failure)).toEqual(expect.arrayContaining([expect.stringContaining("more than 300 s old"), expect.stringContaining("no Stripe-Signature header")]));
  });
});
