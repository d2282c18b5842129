// The dashboard in a real browser: Debian's chromium driven by playwright-core against the whole
// platform (server, `stasis runner` process with CRIU, embedded PostgreSQL). Writes the README's
// screenshots into docs/screenshots/.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callStasisApi, createLayoutImageStore, deployProject } from "../builder/index.ts";
import type { DeploymentView, RunView } from "../schemas/index.ts";
import { REPO_ROOT, startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = join(REPO_ROOT, "docs/screenshots");
const UI_TIMEOUT = 60_000;

let stack: TestStack;
let browser: Browser;
let page: Page;
let versions: DeploymentView[];

async function loginLink(): Promise<string> {
  return (await callStasisApi<{ url: string }>(stack.apiUrl, stack.local.adminToken, "POST", "/api/v1/admin/dashboard/login-links")).url;
}

/** A page of the top navigation (other links on a page may share its name). */
function nav(name: string) {
  return page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name });
}

async function statusOf(id: string): Promise<string> {
  return (await stack.api<RunView>("GET", `/api/v1/runs/${id}`)).status;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)`);
  // The project's own build produces the dashboard (dist/ is never committed).
  await promisify(execFile)(process.execPath, [join(REPO_ROOT, "scripts/build-dist.mjs")], { cwd: REPO_ROOT });
  stack = await startTestStack({ runners: 0, project: "waits" });
  const fixture = join(REPO_ROOT, "test/fixtures/waits");
  versions = [await stack.deploy(fixture), await stack.deploy(fixture)];
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  page.on("console", (message) => message.type() === "error" && console.error(`page console: ${message.text()}`));
  // Every status the run header shows, in order, recorded in the page as it renders (no reloads).
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { __statuses: string[] }).__statuses = seen;
    new MutationObserver(() => {
      const status = document.querySelector("[data-testid=run-status] [data-status]")?.getAttribute("data-status");
      if (status && seen[seen.length - 1] !== status) seen.push(status);
    }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

describe("the dashboard in chromium", () => {
  it("logs in with the one-time link; a second use is refused on the page", async () => {
    const link = await loginLink();
    await page.goto(link);
    await page.getByRole("heading", { name: /Runs/ }).waitFor({ timeout: UI_TIMEOUT });
    await page.getByTestId("environment-picker").waitFor();
    await waitFor("the picker to choose waits/development", async () => (await page.getByTestId("environment-picker").inputValue()) === "waits/development");

    const other = await browser.newPage();
    await other.goto(link);
    await other.getByText(/already used or has expired/).waitFor({ timeout: UI_TIMEOUT });
    await other.close();
  });

  it("triggers from the test page and watches the run go QUEUED → EXECUTING → SUSPENDED → COMPLETED live, then reads its logs", async () => {
    await nav("Test").click();
    await page.getByTestId("task").selectOption("sleep-then-gate");
    // A malformed payload: a message on the page, and nothing triggered.
    await page.getByLabel(/Payload/).fill("{ seconds: 6 ");
    await page.getByRole("button", { name: "Trigger" }).click();
    await page.getByRole("alert").filter({ hasText: "not valid JSON" }).waitFor();
    expect((await stack.api<{ data: RunView[] }>("GET", "/api/v1/runs")).data).toHaveLength(0);

    await page.getByLabel(/Payload/).fill(`{ "seconds": 6 }`);
    await page.getByRole("button", { name: "Trigger" }).click();
    await page.waitForURL(/\/runs\/run_/, { timeout: UI_TIMEOUT });
    const id = decodeURIComponent(new URL(page.url()).pathname.split("/").pop()!);
    await page.locator("[data-testid=run-status] [data-status=QUEUED]").waitFor({ timeout: UI_TIMEOUT });
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));

    // No runner yet: the run waits in the queue. A real runner process with CRIU picks it up; waits over 1 s freeze.
    await stack.startRunnerProcess({ name: "dash-runner", suspendThresholdMs: 1000 });
    await page.locator("[data-testid=run-status] [data-status=COMPLETED]").waitFor({ timeout: 120_000 });
    const statuses = await page.evaluate(() => (window as unknown as { __statuses: string[] }).__statuses);
    const order = ["QUEUED", "EXECUTING", "SUSPENDED", "COMPLETED"].map((s) => statuses.indexOf(s));
    expect(order.every((i) => i >= 0), statuses.join(" → ")).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    expect(await statusOf(id)).toBe("COMPLETED");

    // The timeline shows the wait as frozen, with its checkpoint's size and the resume.
    const frozen = page.locator("[data-kind=wait][data-frozen=true]");
    await frozen.waitFor();
    await expect.poll(() => frozen.textContent(), { timeout: UI_TIMEOUT }).toMatch(/checkpoint \d+(\.\d)? (KiB|MiB)/);
    await expect.poll(() => frozen.textContent(), { timeout: UI_TIMEOUT }).toMatch(/resumed .* on runner/);
    // Logs from before and after the restore, with structured data to expand.
    await page.locator(".log", { hasText: "line 3 after the wait" }).waitFor({ timeout: UI_TIMEOUT });
    await page.locator(".log", { hasText: "line 1 before the wait" }).waitFor();
    await page.locator(".log", { hasText: "line 2 before the wait" }).getByText("data").click();
    await page.locator(".log", { hasText: "line 2 before the wait" }).locator("pre").filter({ hasText: "random" }).waitFor();
    await page.screenshot({ path: join(SHOTS, "run-page-frozen-wait.png"), fullPage: true });
  }, 240_000);

  it("shows new runs in the list live and filters them", async () => {
    await nav("Runs").click();
    await page.locator("table.runs tbody tr").first().waitFor({ timeout: UI_TIMEOUT });
    // Typed, not applied yet, when a live update re-renders the list: the text must stay (the full
    // suite found it wiped on a loaded machine — the filter then never applied).
    await page.getByLabel("Tag", { exact: true }).fill("from-api");
    const { id } = await stack.api<{ id: string }>("POST", "/api/v1/tasks/sleep-then-gate/trigger", { payload: { seconds: 2 }, options: { tags: ["from-api"] } });
    await page.locator(`tr[data-run="${id}"]`).waitFor({ timeout: UI_TIMEOUT });
    expect(await page.getByLabel("Tag", { exact: true }).inputValue()).toBe("from-api");
    await page.getByLabel("Tag", { exact: true }).press("Tab");
    await waitFor("the tag filter to apply", async () => (await page.locator("table.runs tbody tr").count()) === 1);
    await page.getByRole("button", { name: "Clear" }).click();
    await waitFor("both runs back", async () => (await page.locator("table.runs tbody tr").count()) >= 2);
    await page.locator(`tr[data-run="${id}"] [data-status=COMPLETED]`).waitFor({ timeout: 120_000 });
    await page.screenshot({ path: join(SHOTS, "runs.png"), fullPage: true });
  }, 180_000);

  it("cancels a frozen run from its page", async () => {
    const { id } = await stack.api<{ id: string }>("POST", "/api/v1/tasks/sleep-then-gate/trigger", { payload: { seconds: 600 } });
    await page.goto(`${stack.apiUrl}/runs/${id}`);
    await page.locator("[data-testid=run-status] [data-status=SUSPENDED]").waitFor({ timeout: 120_000 });
    await page.getByRole("button", { name: "Cancel run" }).click();
    await page.locator("[data-testid=run-status] [data-status=CANCELED]").waitFor({ timeout: UI_TIMEOUT });
    expect(await statusOf(id)).toBe("CANCELED");
    expect(await page.getByRole("button", { name: "Cancel run" }).isDisabled()).toBe(true);
  }, 180_000);

  it("cancels a filtered selection of runs in bulk, after a confirmation", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await stack.api<{ id: string }>("POST", "/api/v1/tasks/sleep-then-gate/trigger", { payload: { seconds: 600 }, options: { tags: ["bulk"] } })).id);
    await nav("Runs").click();
    await page.getByLabel("Tag", { exact: true }).fill("bulk");
    await page.getByLabel("Tag", { exact: true }).press("Tab");
    await waitFor("the two bulk runs", async () => (await page.locator("table.runs tbody tr").count()) === 2);
    await page.getByLabel("Select every run shown").check();
    await page.getByRole("button", { name: "Cancel selected" }).click();
    expect(await Promise.all(ids.map(statusOf))).not.toContain("CANCELED");
    await page.getByRole("button", { name: "Yes, cancel them" }).click();
    await expect.poll(() => page.getByTestId("bulk-result").textContent(), { timeout: UI_TIMEOUT }).toMatch(/Canceled 2 of 2/);
    expect(await Promise.all(ids.map(statusOf))).toEqual(["CANCELED", "CANCELED"]);
    await page.getByRole("button", { name: "Clear" }).click();
  }, 120_000);

  it("rolls back and promotes again, each after a confirmation", async () => {
    const [older, newer] = versions;
    const promotedNow = async () => (await stack.api<{ data: DeploymentView[] }>("GET", "/api/v1/deployments")).data.find((d) => d.promoted)!.version;
    await nav("Deployments").click();
    await expect.poll(() => page.getByTestId("promoted").textContent(), { timeout: UI_TIMEOUT }).toBe(newer.version);
    await expect.poll(() => page.locator(`tr[data-version="${older.version}"]`).textContent()).toContain(older.imageDigest!.slice(0, 19));

    // Rollback moves to the version promoted before this one; nothing happens before the confirmation.
    await page.getByRole("button", { name: "Roll back" }).click();
    expect(await promotedNow()).toBe(newer.version);
    await page.getByRole("button", { name: "Yes, roll back" }).click();
    await expect.poll(() => page.getByTestId("promoted").textContent(), { timeout: UI_TIMEOUT }).toBe(older.version);
    expect(await promotedNow()).toBe(older.version);

    const row = page.locator(`tr[data-version="${newer.version}"]`);
    await row.getByRole("button", { name: "Promote" }).click();
    expect(await promotedNow()).toBe(older.version);
    await row.getByRole("button", { name: "Yes, promote" }).click();
    await expect.poll(() => page.getByTestId("promoted").textContent(), { timeout: UI_TIMEOUT }).toBe(newer.version);
    expect(await promotedNow()).toBe(newer.version);
  }, 120_000);

  it("promotes a preview's version to development as is: a new version with the same digest, its provenance shown", async () => {
    const preview = await callStasisApi<{ apiKey: string }>(stack.apiUrl, stack.local.adminToken, "POST", "/api/v1/admin/projects/waits/environments", { slug: "preview/pr-7" });
    const built = (await deployProject({ projectDir: join(REPO_ROOT, "test/fixtures/waits"), apiUrl: stack.apiUrl, apiKey: preview.apiKey, store: createLayoutImageStore(stack.local.dirs.images), promote: true, withRuntime: false }))!;
    await nav("Runs").click();
    await nav("Deployments").click();
    const item = page.locator('[data-preview="preview/pr-7"]');
    await item.getByRole("button", { name: "Promote to development as is" }).click({ timeout: UI_TIMEOUT });
    await item.getByRole("button", { name: /^Yes, promote to development/ }).click();
    const copied = await waitFor("the copied version to be promoted", async () => {
      const promoted = (await stack.api<{ data: DeploymentView[] }>("GET", "/api/v1/deployments")).data.find((d) => d.promoted)!;
      return promoted.copiedFrom ? promoted : null;
    }, { timeoutMs: UI_TIMEOUT });
    expect(copied).toMatchObject({ imageDigest: built.imageDigest, copiedFrom: { environment: "preview/pr-7", version: built.version } });
    await expect.poll(() => page.getByTestId("promoted").textContent(), { timeout: UI_TIMEOUT }).toBe(copied.version);
    await expect.poll(() => page.locator(`tr[data-version="${copied.version}"]`).textContent()).toContain(`copied from preview/pr-7 ${built.version}`);
    await page.screenshot({ path: join(SHOTS, "deployments.png"), fullPage: true });
  }, 180_000);

  it("creates a key (shown once) that works, and revokes it", async () => {
    await nav("Environments").click();
    await page.getByRole("button", { name: "Create a key" }).click();
    const key = (await page.getByTestId("new-key").textContent())!;
    expect(key).toMatch(/^sk_development_/);
    expect((await callStasisApi<{ environment: string }>(stack.apiUrl, key, "GET", "/api/v1/whoami")).environment).toBe("development");
    await page.getByRole("button", { name: "Done" }).click();
    expect(await page.getByTestId("new-key").count()).toBe(0);
    expect(await page.content()).not.toContain(key);

    const keys = await callStasisApi<{ data: Array<{ id: string; revokedAt: string | null; createdAt: string }> }>(stack.apiUrl, stack.local.adminToken, "GET", "/api/v1/admin/projects/waits/environments/development/keys");
    const newest = keys.data.filter((k) => !k.revokedAt).sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
    const row = page.locator(`tr[data-key="${newest.id}"]`);
    await row.getByRole("button", { name: "Revoke" }).click();
    await row.getByRole("button", { name: "Yes, revoke" }).click();
    await expect.poll(() => row.textContent(), { timeout: UI_TIMEOUT }).toMatch(/revoked/);
    await expect(callStasisApi(stack.apiUrl, key, "GET", "/api/v1/whoami")).rejects.toThrow(/401|invalid API key/);
  }, 120_000);

  it("shows each task of the promoted version with its settings, and a chart whose counts are the task's runs", async () => {
    const promoted = (await stack.api<{ data: DeploymentView[] }>("GET", "/api/v1/deployments")).data.find((d) => d.promoted)!;
    // Every run this file made so far, by status (all finished by now: the page shows them as they are).
    const runs = (await stack.api<{ data: RunView[] }>("GET", "/api/v1/runs?task=sleep-then-gate&limit=100")).data;
    const expected: Record<string, number> = {};
    for (const run of runs) expected[run.status] = (expected[run.status] ?? 0) + 1;
    expect(runs.length).toBeGreaterThanOrEqual(5);

    await nav("Tasks").click();
    await expect.poll(() => page.getByTestId("tasks-version").textContent(), { timeout: UI_TIMEOUT }).toBe(promoted.version);
    const card = page.locator('article[data-task="sleep-then-gate"]');
    await card.waitFor({ timeout: UI_TIMEOUT });
    expect(await page.locator("article[data-task]").count()).toBe(promoted.tasks.length);
    // The settings come from the version's manifest: the project's default retry (stasis.config.ts), the default machine and queue.
    expect(await card.getByTestId("retry").textContent()).toMatch(/^up to 3 attempts, backoff 100 ms → 500 ms ×2/);
    expect(await card.getByTestId("machine").textContent()).toBe("small-1x (0.5 vCPU, 512 MB)");
    expect(await card.getByTestId("queue").textContent()).toBe("task/sleep-then-gate, no concurrency limit");

    // The legend and the bars of the chart both count exactly the runs made above.
    await expect.poll(() => card.getByTestId("total").textContent(), { timeout: UI_TIMEOUT }).toBe(String(runs.length));
    const legend = Object.fromEntries(
      await card.locator("[data-status-total]").evaluateAll((items) => items.map((li) => [li.getAttribute("data-status-total"), Number(li.querySelector("[data-count]")!.textContent)])),
    );
    expect(legend).toEqual(expected);
    const bars: Record<string, number> = {};
    for (const [status, count] of await card.locator("svg.chart rect[data-status]").evaluateAll((rects) => rects.map((r) => [r.getAttribute("data-status")!, Number(r.getAttribute("data-count"))] as const))) {
      bars[status] = (bars[status] ?? 0) + count;
    }
    expect(bars).toEqual(expected);
    expect(await card.getByTestId("p50").textContent()).toMatch(/\d/);
    expect(await card.locator("svg.chart").getAttribute("aria-label")).toContain(`${runs.length} runs in the last 24 hours`);

    // With the keyboard: open the chart's numbers as a table; change the window.
    await card.getByText("The chart as a table").focus();
    await page.keyboard.press("Enter");
    await card.locator("details table tbody tr").first().waitFor();
    await page.getByTestId("window").focus();
    await page.keyboard.press("ArrowUp");
    await expect.poll(() => page.getByTestId("window").inputValue(), { timeout: UI_TIMEOUT }).toBe("6");
    await expect.poll(() => card.getByTestId("total").textContent(), { timeout: UI_TIMEOUT }).toBe(String(runs.length));
    await page.getByTestId("window").selectOption("24");
    await card.getByTestId("total").waitFor();
    await page.screenshot({ path: join(SHOTS, "tasks.png"), fullPage: true });
  }, 120_000);

  it("a staging key's session sees none of development's runs, and an expired session says so", async () => {
    const developmentRuns = (await stack.api<{ data: RunView[] }>("GET", "/api/v1/runs")).data;
    expect(developmentRuns.length).toBeGreaterThan(0);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to Stasis" }).waitFor({ timeout: UI_TIMEOUT });
    // With the keyboard only: Tab to the field, type, Enter.
    await waitFor("the credential field to have the focus", async () => {
      if (await page.evaluate(() => document.activeElement?.id === "credential")) return true;
      await page.keyboard.press("Tab");
      return false;
    });
    await page.keyboard.type(stack.keys.staging);
    await page.keyboard.press("Enter");
    await expect.poll(() => page.getByTestId("environment").textContent(), { timeout: UI_TIMEOUT }).toBe("waits/staging");
    await page.getByText("No runs match").waitFor({ timeout: UI_TIMEOUT });
    await page.goto(`${stack.apiUrl}/runs/${developmentRuns[0].id}`);
    await page.getByRole("heading", { name: "Not your environment" }).waitFor({ timeout: UI_TIMEOUT });
    expect(await page.content()).not.toContain(JSON.stringify(developmentRuns[0].payload, null, 2));

    await stack.local.db("dashboard_sessions").update({ expires_at: new Date(Date.now() - 1000) });
    await page.goto(`${stack.apiUrl}/`);
    await page.getByText(/session expired/).waitFor({ timeout: UI_TIMEOUT });
  }, 120_000);
});
