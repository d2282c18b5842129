// The admin's dashboard in Debian's chromium against a server-only fixture (no runner, no CRIU):
// the run list across all environments (an environment key's session never gets it), and
// archiving an environment after a confirmation.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, deploy, startServerFixture, type ServerFixture } from "./support/server-fixture.ts";
import { REPO_ROOT } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

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
  await deploy(f, ["hello"], { key: f.keys.production });
  origin = await f.server.app.listen({ host: "127.0.0.1", port: 0 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await f?.close();
});

const trigger = async (key: string) => (await f.call("POST", "/api/v1/tasks/hello/trigger", { key, body: { payload: {} } })).body.id as string;

describe("the admin's dashboard", () => {
  it("lists runs of every environment with their environment; an environment key's session has no such choice", async () => {
    const prod = await trigger(f.keys.production);
    const staging = await trigger(f.keys.staging);
    // A key's session first: its picker is absent and its list is its own environment's.
    const keyPage = await browser.newPage();
    await keyPage.goto(`${origin}/`);
    await keyPage.getByLabel(/API key/).fill(f.keys.production);
    await keyPage.getByRole("button", { name: "Sign in" }).click();
    await keyPage.locator(`tr[data-run="${prod}"]`).waitFor({ timeout: UI_TIMEOUT });
    expect(await keyPage.locator(`tr[data-run="${staging}"]`).count()).toBe(0);
    expect(await keyPage.getByTestId("environment-picker").count()).toBe(0);
    await keyPage.close();

    // The list of environments is held back until the admin has chosen: a choice made while it loads is kept.
    let releaseProjects!: () => void;
    const projectsHeld = new Promise<void>((resolve) => (releaseProjects = resolve));
    await page.route("**/api/v1/admin/projects", async (route) => {
      await projectsHeld;
      await route.continue();
    });
    await page.goto(`${origin}/`);
    await page.getByLabel(/admin token/).fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByTestId("environment-picker").waitFor({ timeout: UI_TIMEOUT });
    await page.getByTestId("environment-picker").selectOption("*");
    releaseProjects();
    await page.getByTestId("environment-picker").locator("optgroup").first().waitFor({ state: "attached", timeout: UI_TIMEOUT });
    await page.unroute("**/api/v1/admin/projects");
    expect(await page.getByTestId("environment-picker").inputValue()).toBe("*");
    await page.locator(`tr[data-run="${prod}"]`).getByText("demo/production").waitFor({ timeout: UI_TIMEOUT });
    await page.locator(`tr[data-run="${staging}"]`).getByText("demo/staging").waitFor();
    // A run started now shows up without a reload.
    const later = await trigger(f.keys.staging);
    await page.locator(`tr[data-run="${later}"]`).waitFor({ timeout: UI_TIMEOUT });
    await page.screenshot({ path: join(REPO_ROOT, "docs/screenshots/runs-all-environments.png"), fullPage: true });
    // Opening a run switches the picker to its environment.
    await page.getByRole("link", { name: staging }).click();
    await waitFor("the run page in demo/staging", async () => new URL(page.url()).pathname === `/runs/${staging}` && (await page.getByTestId("environment-picker").inputValue()) === "demo/staging");
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Runs" }).click();
  });

  it("archives demo/staging only after the confirmation; new runs there are then refused", async () => {
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
