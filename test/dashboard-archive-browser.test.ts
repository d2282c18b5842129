// Archiving an environment from the dashboard in Debian's chromium, against a server-only fixture
// (no runner, no CRIU): the admin asks, confirms, and the environment then refuses new runs.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, deploy, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";
import { REPO_ROOT } from "./support/stack.ts";

const CHROMIUM = "/usr/bin/chromium";
const UI_TIMEOUT = 20_000;

let f: ServerFixture;
let browser: Browser;
let page: Page;
let origin: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)`);
  await promisify(execFile)(process.execPath, [join(REPO_ROOT, "scripts/build-dist.mjs")], { cwd: REPO_ROOT });
  f = await startServerFixture();
  await deploy(f, ["hello"], { key: f.keys.staging });
  origin = await f.server.app.listen({ host: "127.0.0.1", port: 0 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await f?.close();
});

describe("archiving from the Environments page", () => {
  it("archives demo/staging only after the confirmation; new runs there are then refused", async () => {
    await page.goto(`${origin}/`);
    await page.getByLabel(/admin token/).fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByTestId("environment-picker").waitFor({ timeout: UI_TIMEOUT });
    await page.getByTestId("environment-picker").selectOption("demo/staging");
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Environments" }).click();
    await page.getByRole("button", { name: "Archive this environment" }).click({ timeout: UI_TIMEOUT });
    // Saying no archives nothing.
    await page.getByRole("group", { name: "Confirm archive" }).getByRole("button", { name: "No" }).click();
    expect((await f.call("POST", "/api/v1/tasks/hello/trigger", { key: f.keys.staging, body: { payload: {} } })).status).toBe(200);

    await page.getByRole("button", { name: "Archive this environment" }).click();
    await page.getByRole("button", { name: "Yes, archive" }).click();
    await page.getByText(/This environment is archived/).waitFor({ timeout: UI_TIMEOUT });
    const refused = await f.call("POST", "/api/v1/tasks/hello/trigger", { key: f.keys.staging, body: { payload: {} } });
    expect(refused.status).not.toBe(200);
    expect(JSON.stringify(refused.body)).toContain("archived");
    await page.screenshot({ path: join(REPO_ROOT, "docs/screenshots/environment-archived.png"), fullPage: true });
  });
});
