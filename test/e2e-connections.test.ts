// `connections.getToken` inside a real task: built and deployed like any project, run by a runner;
// the task asks its runner, the runner asks the server with the run's lease, scoped to the run's
// environment. The token works at the provider (oidc-provider), and is refreshed for the task once it expires.
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callStasisApi } from "../builder/index.ts";
import type { LogLine, RunView } from "../schemas/index.ts";
import { CLIENT, followRedirects, startTestProvider, type TestProvider } from "./support/oidc-provider.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

const FIXTURE = resolve(import.meta.dirname, "fixtures/connections");
let stack: TestStack;
let idp: TestProvider;

async function run(environment: string, payload: object): Promise<{ run: RunView; logs: string }> {
  const key = stack.keys[environment]!;
  const { id } = await callStasisApi<{ id: string }>(stack.apiUrl, key, "POST", "/api/v1/tasks/use-token/trigger", { payload });
  const view = await waitFor(`run ${id} to finish`, async () => {
    const v = await callStasisApi<RunView>(stack.apiUrl, key, "GET", `/api/v1/runs/${id}`);
    return ["COMPLETED", "FAILED", "CANCELED", "TIMED_OUT"].includes(v.status) ? v : null;
  }, { timeoutMs: 60_000 });
  const logs = await callStasisApi<{ data: LogLine[] }>(stack.apiUrl, key, "GET", `/api/v1/runs/${id}/logs?limit=1000`);
  return { run: view, logs: logs.data.map((l) => l.message).join("\n") };
}

beforeAll(async () => {
  stack = await startTestStack({ project: "connections", runners: 1 });
  idp = await startTestProvider({ redirectUris: [`${stack.apiUrl}/api/v1/connect/callback`], accessTokenTtlSeconds: 3 });
  for (const environment of ["development", "staging"]) {
    await callStasisApi(stack.apiUrl, stack.keys[environment]!, "POST", "/api/v1/integrations", {
      slug: "idp", provider: "oidc", issuer: idp.issuer, clientId: CLIENT.id, clientSecret: CLIENT.secret, scopes: ["openid", "email", "offline_access"],
    });
    await stack.deploy(FIXTURE, { environment });
  }
  idp.user.account = "carol";
  const { url } = await callStasisApi<{ url: string }>(stack.apiUrl, stack.keys.development!, "POST", "/api/v1/integrations/idp/connect", {});
  const landed = await followRedirects(url, [idp.issuer, `${stack.apiUrl}/api/`]);
  expect(landed.url).toContain("/connections?connected=idp");
}, 240_000);

afterAll(async () => {
  await idp?.close();
  await stack?.stop();
});

describe("connections.getToken in a task", () => {
  it("gets a working token through the runner, refreshed after it expires; the token is not in the output or logs", async () => {
    const first = await run("development", { integration: "idp", userinfo: `${idp.issuer}/me` });
    expect(first.run.status).toBe("COMPLETED");
    expect(first.run.output).toMatchObject({ ok: true, status: 200, email: "carol@example.test", account: "carol@example.test" });
    const hits = idp.tokenHits();
    await waitFor("the access token to expire", () => Date.now() > new Date((first.run.output as { expiresAt: string }).expiresAt).getTime() || null, { timeoutMs: 10_000, intervalMs: 100 });
    const second = await run("development", { integration: "idp", userinfo: `${idp.issuer}/me`, print: true, returnToken: true });
    // A token returned as output is redacted like a printed one.
    expect(second.run.output).toMatchObject({ ok: true, status: 200, token: "[redacted:connection:idp]" });
    expect(idp.tokenHits() - hits).toBe(1);
    const stored = await callStasisApi<{ accessToken: string }>(stack.apiUrl, stack.keys.development!, "POST", "/api/v1/connections/token", { integration: "idp" });
    expect(JSON.stringify(second.run.output)).not.toContain(stored.accessToken);
    expect(second.logs).toContain("userinfo answered 200");
    expect(second.logs).not.toContain(stored.accessToken);
    // The task printed its token carelessly: the runner redacted it before the line left.
    expect(second.logs).toContain("careless: the token is [redacted:connection:idp]");
  });

  it("is scoped to the run's environment, and an unknown externalId or a broken connection is named in the task's error", async () => {
    const staging = await run("staging", { integration: "idp", userinfo: `${idp.issuer}/me` });
    expect(staging.run.output).toMatchObject({ ok: false });
    expect((staging.run.output as { error: string }).error).toContain("no team connection");
    const unknown = await run("development", { integration: "idp", externalId: "nobody", userinfo: `${idp.issuer}/me` });
    expect((unknown.run.output as { error: string }).error).toContain("nobody");
    await idp.revoke(idp.latestRefreshToken("carol")!);
    const current = await callStasisApi<{ expiresAt: string }>(stack.apiUrl, stack.keys.development!, "POST", "/api/v1/connections/token", { integration: "idp" });
    await waitFor("the access token to expire", () => Date.now() > new Date(current.expiresAt).getTime() || null, { timeoutMs: 10_000, intervalMs: 100 });
    const broken = await run("development", { integration: "idp", userinfo: `${idp.issuer}/me` });
    expect((broken.run.output as { error: string }).error).toMatch(/is broken.*invalid_grant/);
  });
});
