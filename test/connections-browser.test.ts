// Connect from the dashboard in Debian's chromium (playwright-core): the Connections page, the
// provider's login and consent (a real oidc-provider), the callback, the connection's row, a broken
// connection after the provider revoked it, revoking from the page, and a bad callback's page.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startConnectionsStack, type ConnectionsStack } from "./support/connections.ts";
import { CLIENT } from "./support/oidc-provider.ts";
import { REPO_ROOT } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = join(REPO_ROOT, "docs/screenshots");
const UI_TIMEOUT = 30_000;
let s: ConnectionsStack;
let browser: Browser;
let page: Page;

const row = () => page.locator("tr[data-connection]").filter({ hasText: "the team" });

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)`);
  await promisify(execFile)(process.execPath, [join(REPO_ROOT, "scripts/build-dist.mjs")], { cwd: REPO_ROOT });
  s = await startConnectionsStack({ accessTokenTtlSeconds: 3 });
  const added = await s.call("POST", "/api/v1/integrations", {
    body: { slug: "idp", provider: "oidc", issuer: s.idp.issuer, clientId: CLIENT.id, clientSecret: CLIENT.secret, scopes: ["openid", "email", "offline_access"] },
  });
  expect(added.status).toBe(200);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1360, height: 800 } });
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await s?.stop();
});

describe("Connections in the dashboard", () => {
  it("connects the team's account with the Connect button and shows account, scopes, expiry and status", async () => {
    await page.goto(s.url);
    await page.getByLabel(/API key/).fill(s.keys.production!);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Connections" }).click();
    await page.getByRole("button", { name: "Connect idp" }).click();
    // The provider signs alice in and asks for consent (programmatic), then sends the browser back.
    await page.waitForURL(`${s.url}/connections?connected=idp`, { timeout: UI_TIMEOUT });
    await page.getByRole("status").filter({ hasText: "Connected idp" }).waitFor({ timeout: UI_TIMEOUT });
    await row().waitFor({ timeout: UI_TIMEOUT });
    const text = await row().innerText();
    expect(text).toContain("alice@example.test");
    expect(text).toContain("offline_access");
    expect(text).toContain("active");
    expect(await row().getAttribute("data-status")).toBe("active");
    await page.screenshot({ path: join(SHOTS, "connections.png"), fullPage: true });
  });

  it("shows the connection broken after the provider revoked its refresh token", async () => {
    await s.idp.revoke(s.idp.latestRefreshToken("alice")!);
    const broken = await waitFor("getToken to find the connection broken", async () => {
      const answer = await s.call("POST", "/api/v1/connections/token", { body: { integration: "idp" } });
      return answer.status === 409 ? answer.body.error : null;
    }, { timeoutMs: 15_000, intervalMs: 200 });
    expect(broken.code).toBe("CONNECTION_BROKEN");
    await page.reload();
    await page.locator("tr[data-status=broken]").waitFor({ timeout: UI_TIMEOUT });
    expect(await row().innerText()).toContain("invalid_grant");
  });

  it("revokes a connection from the page", async () => {
    await row().getByRole("button", { name: "Revoke" }).click();
    await page.getByRole("button", { name: "Yes, revoke" }).click();
    await page.getByText("No accounts connected yet.").waitFor({ timeout: UI_TIMEOUT });
    expect((await s.call("GET", "/api/v1/connections")).body.data).toEqual([]);
  });

  it("an end user follows a Connect link, grants access, lands on the app, and shows up under their externalId", async () => {
    s.idp.user.account = "dora";
    const redirectTo = `${s.url}/connections?from=connect-link`;
    const link = await s.call("POST", "/api/v1/connect-links", { body: { integration: "idp", externalId: "user-9", redirectTo } });
    expect(link.status).toBe(200);
    const user = await browser.newPage();
    await user.goto(link.body.url);
    await user.waitForURL(redirectTo, { timeout: UI_TIMEOUT });
    await user.close();
    await page.reload();
    const endUser = page.locator("tr[data-connection]").filter({ hasText: "user-9" });
    await endUser.waitFor({ timeout: UI_TIMEOUT });
    expect(await endUser.innerText()).toContain("dora@example.test");
    // The same link a second time: a page saying it was used.
    await page.goto(link.body.url);
    await page.getByRole("heading", { name: "This Connect link was already used" }).waitFor({ timeout: UI_TIMEOUT });
  });

  it("a callback with a state Stasis never issued shows a page naming the problem", async () => {
    await page.goto(`${s.url}/api/v1/connect/callback?code=x&state=forged`);
    await page.getByRole("heading", { name: "Unknown state" }).waitFor({ timeout: UI_TIMEOUT });
    expect(await page.locator("main").getAttribute("data-code")).toBe("STATE_UNKNOWN");
    await page.screenshot({ path: join(SHOTS, "connect-error.png") });
  });
});
