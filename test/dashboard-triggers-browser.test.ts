// The "Webhooks & schedules" page in Debian's chromium against a server-only fixture (no runner,
// no CRIU): a source's deliveries with their status, signature result and run links, and the
// environment's schedules, one of which is deactivated from the page.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deploy, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";
import { REPO_ROOT } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const CHROMIUM = "/usr/bin/chromium";
const UI_TIMEOUT = 20_000;
const SECRET = "whsec_test_0123456789abcdef";

let f: ServerFixture;
let browser: Browser;
let page: Page;
let origin: string;
let scheduleId: string;

async function deliver(body: string, secret = SECRET) {
  const signature = Stripe.webhooks.generateTestHeaderString({ payload: body, secret });
  const res = await f.server.app.inject({ method: "POST", url: "/api/v1/webhooks/demo/production/stripe", payload: body, headers: { "stripe-signature": signature, "content-type": "application/json" } });
  return res.statusCode;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)`);
  await promisify(execFile)(process.execPath, [join(REPO_ROOT, "scripts/build-dist.mjs")], { cwd: REPO_ROOT });
  f = await startServerFixture();
  await deploy(f, [{ id: "invoice-paid", webhook: { source: "stripe", provider: "stripe", secretEnv: "STRIPE_WEBHOOK_SECRET", events: ["invoice.paid"] } }, "nightly"]);
  expect((await f.call("PUT", "/api/v1/envvars/STRIPE_WEBHOOK_SECRET", { body: { value: SECRET } })).status).toBe(200);
  const schedule = await f.call("POST", "/api/v1/schedules", { body: { task: "nightly", cron: "0 3 * * *", timezone: "Europe/Berlin", externalId: "tenant-7" } });
  expect(schedule.status, JSON.stringify(schedule.body)).toBe(200);
  scheduleId = schedule.body.id;
  origin = await f.server.app.listen({ host: "127.0.0.1", port: 0 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await f?.close();
});

describe("the Webhooks & schedules page", () => {
  it("shows deliveries (accepted with its run, refused with why) and schedules, and deactivates one", async () => {
    const event = JSON.stringify({ id: "evt_dash_1", object: "event", type: "invoice.paid", created: Math.floor(Date.now() / 1000), data: { object: { id: "in_1" } } });
    expect(await deliver(event)).toBe(200);
    expect(await deliver(JSON.stringify({ id: "evt_forged", object: "event", type: "invoice.paid", data: { object: {} } }), "whsec_wrong_secret_000")).not.toBe(200);
    const accepted = (await f.call("GET", "/api/v1/webhook-sources/stripe/deliveries")).body.data.find((d: { status: string }) => d.status === "ACCEPTED");
    const runId: string = accepted.runs[0];

    await page.goto(`${origin}/`);
    await page.getByLabel(/API key/).fill(f.keys.production);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Webhooks & schedules" }).click({ timeout: UI_TIMEOUT });
    const deliveries = page.getByRole("table", { name: "Deliveries to stripe" });
    await deliveries.waitFor({ timeout: UI_TIMEOUT });
    await deliveries.getByText("ACCEPTED").waitFor();
    await deliveries.getByText("REJECTED").waitFor();
    await deliveries.getByText(/refused: /).waitFor();
    await page.getByText("STRIPE_WEBHOOK_SECRET").first().waitFor();
    const row = page.locator(`tr[data-schedule="${scheduleId}"]`);
    await row.getByText("0 3 * * *").waitFor();
    await row.getByText("Europe/Berlin").waitFor();
    await page.screenshot({ path: join(REPO_ROOT, "docs/screenshots/webhooks-schedules.png"), fullPage: true });

    await row.getByRole("button", { name: "Deactivate" }).click();
    await row.getByText("inactive").waitFor({ timeout: UI_TIMEOUT });
    await waitFor("the schedule to be inactive", async () => (await f.call("GET", `/api/v1/schedules/${scheduleId}`)).body.active === false);

    // The run link opens the run the delivery started.
    await deliveries.getByRole("link", { name: runId }).click();
    await waitFor("the run page", async () => new URL(page.url()).pathname === `/runs/${runId}`);
  });

  it("another environment's key sees none of these deliveries or schedules", async () => {
    expect((await f.call("GET", "/api/v1/webhook-sources/stripe/deliveries", { key: f.keys.staging })).body.data).toEqual([]);
    expect((await f.call("GET", "/api/v1/schedules", { key: f.keys.staging })).body.data).toEqual([]);
  });
});
