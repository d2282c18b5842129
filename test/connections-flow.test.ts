// Connections end to end against a real OpenID Provider (oidc-provider) and a real Stasis server on
// PostgreSQL: integrations, the authorization code + PKCE flow through the callback, getToken from app
// code with automatic refresh (once, across two replicas), revocation, Connect links and bad input.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configure, connections, StasisApiError } from "../sdk/index.ts";
import { startConnectionsStack, type ConnectionsStack } from "./support/connections.ts";
import { CLIENT, followRedirects, NO_REFRESH_CLIENT } from "./support/oidc-provider.ts";
import { waitFor } from "./support/wait-for.ts";
import { deploy, poll, registerRunner, RUNNER_TOKEN, type ServerFixture } from "./support/server-fixture.ts";

const ACCESS_TTL = 3;
const APP = "http://app.example.test/done";
let s: ConnectionsStack;

const connectionsOf = async (externalId: string | null) => (await s.call("GET", "/api/v1/connections")).body.data.filter((c: { externalId: string | null }) => c.externalId === externalId);

/** Starts a connect and follows the provider's redirects until it sends the browser back to Stasis's callback. */
async function callbackUrl(integration = "idp", body: object = {}): Promise<string> {
  const start = await s.call("POST", `/api/v1/integrations/${integration}/connect`, { body });
  expect(start.status).toBe(200);
  const hop = await followRedirects(start.body.url, [s.idp.issuer]);
  expect(hop.url).toContain("/api/v1/connect/callback");
  return hop.url;
}

async function userinfo(accessToken: string): Promise<number> {
  return (await fetch(`${s.idp.issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;
}

async function tokenError(promise: Promise<unknown>): Promise<StasisApiError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(StasisApiError);
  return error as StasisApiError;
}

beforeAll(async () => {
  s = await startConnectionsStack({ accessTokenTtlSeconds: ACCESS_TTL });
  configure({ apiUrl: s.url, apiKey: s.keys.production });
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

describe("integrations", () => {
  it("adds an OIDC provider by issuer (discovery), stores the client secret encrypted, and keeps environments apart", async () => {
    const added = await s.call("POST", "/api/v1/integrations", {
      body: { slug: "idp", provider: "oidc", issuer: s.idp.issuer, clientId: CLIENT.id, clientSecret: CLIENT.secret, scopes: ["openid", "email", "offline_access"] },
    });
    expect(added.status).toBe(200);
    expect(added.body).toMatchObject({ slug: "idp", kind: "oauth", issuer: s.idp.issuer, tokenEndpoint: `${s.idp.issuer}/token`, clientSecretSet: true });
    expect(JSON.stringify(added.body)).not.toContain(CLIENT.secret);
    const rows = await s.database.db("integrations").select("client_secret_encrypted", "client_id_encrypted");
    expect(rows.map((r) => Buffer.from(r.client_secret_encrypted).toString("latin1")).join()).not.toContain(CLIENT.secret);
    expect(rows.map((r) => Buffer.from(r.client_id_encrypted).toString("latin1")).join()).not.toContain(CLIENT.id);
    // Explicit endpoints (no discovery), and a provider that collects API keys.
    expect(
      (await s.call("POST", "/api/v1/integrations", {
        body: { slug: "norefresh", provider: "oauth2", authorizationEndpoint: `${s.idp.issuer}/auth`, tokenEndpoint: `${s.idp.issuer}/token`, clientId: NO_REFRESH_CLIENT.id, clientSecret: NO_REFRESH_CLIENT.secret, scopes: ["email"] },
      })).status,
    ).toBe(200);
    expect((await s.call("POST", "/api/v1/integrations", { body: { slug: "weather", provider: "api_key" } })).status).toBe(200);
    const list = await s.call("GET", "/api/v1/integrations");
    expect(list.body.data.map((i: { slug: string }) => i.slug)).toEqual(["idp", "norefresh", "weather"]);
    expect((await s.call("GET", "/api/v1/integrations", { key: s.keys.staging })).body.data).toEqual([]);
    expect((await s.call("POST", "/api/v1/connections/token", { key: s.keys.staging, body: { integration: "idp" } })).body.error.code).toBe("INTEGRATION_NOT_FOUND");
  });

  it("refuses bad integrations, naming the problem", async () => {
    const dup = await s.call("POST", "/api/v1/integrations", { body: { slug: "idp", provider: "oidc", issuer: s.idp.issuer, clientId: "x" } });
    expect([dup.status, dup.body.error.code]).toEqual([409, "INTEGRATION_EXISTS"]);
    const noIssuer = await s.call("POST", "/api/v1/integrations", { body: { slug: "x", provider: "oidc", clientId: "x" } });
    expect(noIssuer.status).toBe(400);
    expect(noIssuer.body.error.message).toContain("issuer");
    const unreachable = await s.call("POST", "/api/v1/integrations", { body: { slug: "x", provider: "oidc", issuer: "http://127.0.0.1:9/", clientId: "x" } });
    expect([unreachable.status, unreachable.body.error.code]).toEqual([400, "DISCOVERY_FAILED"]);
    const plainHttp = await s.call("POST", "/api/v1/integrations", { body: { slug: "x", provider: "oidc", issuer: "http://idp.example.com/", clientId: "x" } });
    expect(plainHttp.status).toBe(400);
    expect(plainHttp.body.error.message).toContain("https");
    expect((await s.call("POST", "/api/v1/integrations", { body: { slug: "Bad Name", provider: "api_key" } })).status).toBe(400);
  });
});

describe("the team's connection", () => {
  it("connects through the provider (code + PKCE + state) and stores the tokens encrypted", async () => {
    s.idp.user.account = "alice";
    const start = await s.call("POST", "/api/v1/integrations/idp/connect", { body: {} });
    const authorize = new URL(start.body.url);
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authorize.searchParams.get("state")).toBeTruthy();
    const landed = await followRedirects(start.body.url, [s.idp.issuer, `${s.url}/api/`]);
    expect(landed.url).toBe(`${s.url}/connections?connected=idp`);
    const [connection] = await connectionsOf(null);
    expect(connection).toMatchObject({ integration: "idp", account: "alice@example.test", status: "active", lastRefreshAt: null });
    expect(connection.scopes).toEqual(expect.arrayContaining(["openid", "email", "offline_access"]));
    expect(new Date(connection.expiresAt).getTime()).toBeGreaterThan(Date.now());
    const token = await connections.getToken("idp");
    expect(await userinfo(token.accessToken)).toBe(200);
    const stored = await s.database.db("connections").first("access_token_encrypted", "refresh_token_encrypted");
    expect(Buffer.from(stored.access_token_encrypted).toString("latin1")).not.toContain(token.accessToken);
    expect(JSON.stringify(await s.call("GET", "/api/v1/connections"))).not.toContain(token.accessToken);
  });

  it("refreshes an expiring token exactly once for concurrent callers on two replicas", async () => {
    const before = await connections.getToken("idp");
    await waitFor("the access token to near its expiry", () => Date.now() >= new Date(before.expiresAt!).getTime() - 500 || null, { timeoutMs: 10_000, intervalMs: 50 });
    const hits = s.idp.tokenHits();
    const callers = Array.from({ length: 10 }, (_, i) => s.call("POST", "/api/v1/connections/token", { via: i % 2 ? s.replica : s.server, body: { integration: "idp" } }));
    const answers = await Promise.all(callers);
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(new Set(answers.map((a) => a.body.accessToken)).size).toBe(1);
    expect(answers[0]!.body.accessToken).not.toBe(before.accessToken);
    expect(s.idp.tokenHits() - hits).toBe(1);
    expect(await userinfo(answers[0]!.body.accessToken)).toBe(200);
    const [connection] = await connectionsOf(null);
    expect(connection.lastRefreshAt).not.toBeNull();
    expect(new Date(connection.expiresAt).getTime()).toBeGreaterThan(Date.now());
  });

  it("asks a slow provider with no database transaction open: waiting callers on both replicas hold no row lock", async () => {
    const before = await connections.getToken("idp");
    await waitFor("the access token to near its expiry", () => Date.now() >= new Date(before.expiresAt!).getTime() - 500 || null, { timeoutMs: 10_000, intervalMs: 50 });
    const hits = s.idp.tokenHits();
    s.idp.slow.tokenMs = 1_500;
    try {
      const pending = Promise.all(Array.from({ length: 6 }, (_, i) => s.call("POST", "/api/v1/connections/token", { via: i % 2 ? s.replica : s.server, body: { integration: "idp" } })));
      await waitFor("the refresh to reach the provider", () => s.idp.tokenHits() > hits || null, { timeoutMs: 10_000, intervalMs: 20 });
      // While the provider sleeps: no session holds a lock on connections in an open transaction, and none waits for one
      // (the row-lock design held FOR UPDATE across the provider call, and the other replica's callers queued behind it).
      const held = await s.database.db.raw(
        "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.relation = 'connections'::regclass AND (a.state LIKE 'idle in transaction%' OR a.wait_event_type = 'Lock')",
      );
      expect(held.rows[0].n).toBe(0);
      const answers = await pending;
      expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
      expect(new Set(answers.map((a) => a.body.accessToken)).size).toBe(1);
      expect(s.idp.tokenHits() - hits).toBe(1);
    } finally {
      s.idp.slow.tokenMs = 0;
    }
  });

  it("marks the connection broken when the provider revoked its refresh token, and says so to callers", async () => {
    await s.idp.revoke(s.idp.latestRefreshToken("alice")!);
    const current = await connections.getToken("idp");
    await waitFor("the access token to near its expiry", () => Date.now() >= new Date(current.expiresAt!).getTime() - 500 || null, { timeoutMs: 10_000, intervalMs: 50 });
    const error = await tokenError(connections.getToken("idp"));
    expect(error.code).toBe("CONNECTION_BROKEN");
    expect(error.message).toContain("broken");
    expect(error.message).toContain("invalid_grant");
    const [connection] = await connectionsOf(null);
    expect(connection.status).toBe("broken");
    // Later callers get the same answer without asking the provider again.
    const hits = s.idp.tokenHits();
    expect((await tokenError(connections.getToken("idp"))).code).toBe("CONNECTION_BROKEN");
    expect(s.idp.tokenHits()).toBe(hits);
    // Connecting again makes it active.
    await followRedirects((await s.call("POST", "/api/v1/integrations/idp/connect", { body: {} })).body.url, [s.idp.issuer, `${s.url}/api/`]);
    expect((await connectionsOf(null))[0].status).toBe("active");
    expect(await userinfo((await connections.getToken("idp")).accessToken)).toBe(200);
  });
});

describe("bad callbacks store nothing", () => {
  it("a replayed state, an unknown state, and a missing state each get a page naming the problem", async () => {
    const url = await callbackUrl("idp", { externalId: "replay-user" });
    const first = await fetch(url, { redirect: "manual" });
    expect(first.status).toBe(303);
    const replay = await fetch(url, { redirect: "manual" });
    expect(replay.status).toBe(400);
    const page = await replay.text();
    expect(page).toContain('data-code="STATE_USED"');
    expect(page).toContain("already used");
    const forged = new URL(url);
    forged.searchParams.set("state", "not-a-state-stasis-made");
    const unknown = await fetch(forged, { redirect: "manual" });
    expect([unknown.status, await unknown.text()]).toEqual([400, expect.stringContaining("Unknown state")]);
    const none = await fetch(`${s.url}/api/v1/connect/callback?code=abc`, { redirect: "manual" });
    expect(await none.text()).toContain("STATE_MISSING");
  });

  it("an authorization error from the provider (the user denied) is named and stores nothing", async () => {
    s.idp.user.deny = true;
    try {
      const url = await callbackUrl("idp", { externalId: "denier" });
      expect(new URL(url).searchParams.get("error")).toBe("access_denied");
      const answer = await fetch(url, { redirect: "manual" });
      const page = await answer.text();
      expect(answer.status).toBe(400);
      expect(page).toContain("PROVIDER_ERROR");
      expect(page).toContain("access_denied");
    } finally {
      s.idp.user.deny = false;
    }
    expect(await connectionsOf("denier")).toEqual([]);
  });

  it("a provider that returns no refresh token is named and nothing is stored", async () => {
    const url = await callbackUrl("norefresh");
    const answer = await fetch(url, { redirect: "manual" });
    const page = await answer.text();
    expect(answer.status).toBe(400);
    expect(page).toContain("NO_REFRESH_TOKEN");
    expect(page).toContain("no refresh token");
    expect((await s.call("GET", "/api/v1/connections?integration=norefresh")).body.data).toEqual([]);
  });

  it("an unknown integration or externalId is a 404 naming it", async () => {
    const unknown = await tokenError(connections.getToken("nope"));
    expect([unknown.status, unknown.code]).toEqual([404, "INTEGRATION_NOT_FOUND"]);
    expect(unknown.message).toContain("nope");
    const noUser = await tokenError(connections.getToken("idp", { externalId: "user-404" }));
    expect([noUser.status, noUser.code]).toEqual([404, "CONNECTION_NOT_FOUND"]);
    expect(noUser.message).toContain("user-404");
    expect((await s.call("POST", "/api/v1/integrations/nope/connect", { body: {} })).status).toBe(404);
  });
});

describe("Connect links", () => {
  it("lets an end user connect under an externalId and land on the app; the link works once", async () => {
    s.idp.user.account = "bob";
    const { url, expiresAt } = await connections.createConnectLink({ integration: "idp", externalId: "user-42", redirectTo: APP });
    expect(url.startsWith(`${s.url}/api/v1/connect/links/cl_`)).toBe(true);
    expect(new Date(expiresAt).getTime()).toBeGreaterThan(Date.now());
    const landed = await followRedirects(url, [s.idp.issuer, `${s.url}/api/`]);
    expect(landed.url).toBe(APP);
    const token = await connections.getToken("idp", { externalId: "user-42" });
    expect(token).toMatchObject({ account: "bob@example.test", externalId: "user-42" });
    expect(await userinfo(token.accessToken)).toBe(200);
    expect((await connections.list({ integration: "idp" })).map((c) => c.externalId).sort()).toEqual([null, "replay-user", "user-42"].sort((a, b) => String(a).localeCompare(String(b))));
    const again = await fetch(url, { redirect: "manual" });
    expect(again.status).toBe(400);
    expect(await again.text()).toContain("already used");
  });

  it("an expired link gets a page saying so; an unknown link a 404 page", async () => {
    const { url, expiresAt } = await connections.createConnectLink({ integration: "idp", externalId: "late-user", redirectTo: APP, expiresInSeconds: 1 });
    await waitFor("the link's expiry", () => Date.now() > new Date(expiresAt).getTime() + 50 || null, { timeoutMs: 10_000, intervalMs: 50 });
    const expired = await fetch(url, { redirect: "manual" });
    expect(expired.status).toBe(400);
    const page = await expired.text();
    expect(page).toContain("LINK_EXPIRED");
    expect(await connectionsOf("late-user")).toEqual([]);
    const unknown = await fetch(`${s.url}/api/v1/connect/links/cl_${"x".repeat(32)}`, { redirect: "manual" });
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain("LINK_UNKNOWN");
    const badInput = await connections.createConnectLink({ integration: "idp", externalId: "", redirectTo: "javascript:alert(1)" }).catch((e: StasisApiError) => e);
    expect((badInput as StasisApiError).status).toBe(400);
  });

  it("collects an API key through a server-hosted form for a provider without OAuth", async () => {
    const { url } = await connections.createConnectLink({ integration: "weather", externalId: "user-7", redirectTo: APP });
    const form = await fetch(url);
    const html = await form.text();
    expect(html).toContain('name="apiKey"');
    const sent = await fetch(url, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ apiKey: "wk_live_123456" }) });
    expect([sent.status, sent.headers.get("location")]).toEqual([303, APP]);
    expect(await connections.getToken("weather", { externalId: "user-7" })).toMatchObject({ accessToken: "wk_live_123456", expiresAt: null });
    const twice = await fetch(url, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ apiKey: "other" }) });
    expect(await twice.text()).toContain("LINK_USED");
    expect((await connections.getToken("weather", { externalId: "user-7" })).accessToken).toBe("wk_live_123456");
  });
});

describe("revoking and removing", () => {
  it("revoking a connection revokes it at the provider and deletes it; removing an integration removes its connections", async () => {
    const [bob] = await connectionsOf("user-42");
    const token = await connections.getToken("idp", { externalId: "user-42" });
    const revoked = await s.call("DELETE", `/api/v1/connections/${bob.id}`);
    expect(revoked.body).toEqual({ revoked: true, providerRevoked: true, subscriptionsDeleted: 0, hooksLeft: [] });
    expect((await tokenError(connections.getToken("idp", { externalId: "user-42" }))).code).toBe("CONNECTION_NOT_FOUND");
    // Revoking the refresh token revoked the whole grant at the provider: the access token no longer works either.
    expect(await userinfo(token.accessToken)).toBe(401);
    expect((await s.call("DELETE", `/api/v1/connections/${bob.id}`, { key: s.keys.staging })).body.revoked).toBe(false);
    const removed = await s.call("DELETE", "/api/v1/integrations/weather");
    expect(removed.body).toEqual({ deleted: true, connectionsDeleted: 1, subscriptionsDeleted: 0, hooksLeft: [] });
    expect((await tokenError(connections.getToken("weather", { externalId: "user-7" }))).code).toBe("INTEGRATION_NOT_FOUND");
  });
});

describe("a run's tokens in its logs", () => {
  it("the server redacts the tokens a run was handed from its log lines (a run restored on another runner prints them past that runner)", async () => {
    const f = s as unknown as ServerFixture;
    await deploy(f, ["use-token"]);
    const runnerId = await registerRunner(f);
    const trig = await s.call("POST", "/api/v1/tasks/use-token/trigger", { body: { payload: {} } });
    const { runs } = await poll(f, runnerId, { waitMs: 2000 });
    const claimed = runs.find((r) => r.runId === trig.body.id)!;
    const token = await s.call("POST", `/api/v1/runner/runs/${claimed.runId}/connections/token`, { key: RUNNER_TOKEN, body: { leaseId: claimed.leaseId, integration: "idp" } });
    expect(token.status).toBe(200);
    expect(token.body.account).toBe("alice@example.test");
    const wrongLease = await s.call("POST", `/api/v1/runner/runs/${claimed.runId}/connections/token`, { key: RUNNER_TOKEN, body: { leaseId: "lease_wrong", integration: "idp" } });
    expect(wrongLease.status).toBe(409);
    const line = { ts: new Date().toISOString(), level: "info", message: `calling the API with ${token.body.accessToken}` };
    expect((await s.call("POST", `/api/v1/runner/runs/${claimed.runId}/logs`, { key: RUNNER_TOKEN, body: { leaseId: claimed.leaseId, lines: [line] } })).status).toBe(200);
    const logs = await s.call("GET", `/api/v1/runs/${claimed.runId}/logs`);
    const messages = logs.body.data.map((l: { message: string }) => l.message).join("\n");
    expect(messages).toContain("calling the API with [redacted:connection:idp]");
    expect(messages).not.toContain(token.body.accessToken);
  });
});
