// Webhook subscriptions made with a user's connection, end to end on a real Stasis server and
// PostgreSQL: tokens come from a real OpenID Provider (oidc-provider) through Connect links, and
// GitHub's hooks API is a local stand-in (test/support/github-hooks-stand-in.ts: GitHub's routes and
// shapes, Bearer tokens checked against that provider) because api.github.com is on the public
// internet. Deliveries are real payloads from @octokit/webhooks-examples, signed with each hook's own
// secret as GitHub signs them. Also here: expired OAuth states and Connect links swept by the
// scheduler, and a token a run returns redacted.
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configure, connections, StasisApiError, webhooks } from "../sdk/index.ts";
import { startConnectionsStack, type ConnectionsStack } from "./support/connections.ts";
import { startGithubHooksStandIn, type GithubHooksStandIn } from "./support/github-hooks-stand-in.ts";
import { CLIENT, followRedirects } from "./support/oidc-provider.ts";
import { deploy, poll, registerRunner, RUNNER_TOKEN, type ServerFixture } from "./support/server-fixture.ts";

const examples = createRequire(import.meta.url)("@octokit/webhooks-examples") as Array<{ name: string; examples: Array<Record<string, any>> }>;
const example = (name: string, action?: string) => structuredClone(examples.find((e) => e.name === name)!.examples.find((x) => action === undefined || x.action === action)!);
const APP = "http://app.example.test/connected";
const SOURCE = "repo-events";
let s: ConnectionsStack;
let gh: GithubHooksStandIn;

async function connectUser(externalId: string, account: string): Promise<void> {
  s.idp.user.account = account;
  const { url } = await connections.createConnectLink({ integration: "github", externalId, redirectTo: APP });
  expect((await followRedirects(url, [s.idp.issuer, `${s.url}/api/`])).url).toBe(APP);
}

async function failure(promise: Promise<unknown>): Promise<StasisApiError> {
  const error = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(StasisApiError);
  return error as StasisApiError;
}

const hooksOf = (repository: string) => gh.hooks.filter((h) => h.repository === repository);
const rows = async () => (await s.database.db("webhook_subscriptions").select("id", "repository", "hook_id")).map((r) => ({ ...r, hook_id: Number(r.hook_id) }));
const runsOf = async (task: string) => (await s.call("GET", `/api/v1/runs?task=${task}&limit=50`)).body.data as Array<{ id: string; payload: any }>;

beforeAll(async () => {
  s = await startConnectionsStack({ accessTokenTtlSeconds: 120, engine: { connectRetentionMs: 2_000, connectSweepIntervalMs: 0 } });
  configure({ apiUrl: s.url, apiKey: s.keys.production });
  gh = await startGithubHooksStandIn({ issuer: s.idp.issuer, repositories: { "alice/app": ["alice"], "alice/lib": ["alice"], "alice/full": ["alice"], "bob/site": ["bob"] } });
  const f = s as unknown as ServerFixture;
  const github = { source: SOURCE, provider: "github" as const, secretEnv: "GITHUB_WEBHOOK_SECRET" };
  await deploy(f, [
    { id: "on-push", webhook: { ...github, events: ["push"] } },
    { id: "on-issue-opened", webhook: { ...github, events: ["issues.opened"] } },
    { id: "on-invoice", webhook: { source: "billing", provider: "stripe", secretEnv: "STRIPE_WEBHOOK_SECRET", events: ["invoice.paid"] } },
    "use-token",
  ]);
  // A GitHub OAuth app, here played by the local provider (discovery), with the stand-in as its REST API.
  const added = await s.call("POST", "/api/v1/integrations", {
    body: { slug: "github", provider: "github", issuer: s.idp.issuer, apiUrl: gh.url, clientId: CLIENT.id, clientSecret: CLIENT.secret, scopes: ["openid", "email", "offline_access"] },
  });
  expect([added.status, added.body.apiUrl]).toEqual([200, gh.url]);
  expect((await s.call("POST", "/api/v1/integrations", { body: { slug: "weather", provider: "api_key" } })).status).toBe(200);
  await connectUser("user-alice", "alice");
  await connectUser("user-bob", "bob");
}, 60_000);

afterAll(async () => {
  await gh?.close();
  await s?.stop();
});

describe("subscribing with a user's connection", () => {
  it("creates the hook on the user's repository with their token and its own secret, and lists it", async () => {
    const sub = await webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-alice", repository: "alice/app" });
    expect(sub).toMatchObject({ source: SOURCE, provider: "github", integration: "github", externalId: "user-alice", account: "alice@example.test", repository: "alice/app", events: ["issues", "push"], connectionStatus: "active" });
    expect(sub.url).toBe(`${s.url}/api/v1/webhooks/demo/production/${SOURCE}/${sub.id}`);
    const [hook] = hooksOf("alice/app");
    expect(hook).toMatchObject({ id: sub.hookId, events: ["issues", "push"], active: true, config: { url: sub.url, content_type: "json", insecure_ssl: "0" } });
    expect(hook!.config.secret).toMatch(/^[0-9a-f]{64}$/);
    // The secret is stored encrypted and never shown.
    const stored = await s.database.db("webhook_subscriptions").first("secret_encrypted");
    expect(Buffer.from(stored.secret_encrypted).toString("latin1")).not.toContain(hook!.config.secret);
    expect(JSON.stringify(await s.call("GET", "/api/v1/webhook-subscriptions"))).not.toContain(hook!.config.secret);
    expect((await webhooks.subscriptions({ source: SOURCE })).map((x) => x.id)).toEqual([sub.id]);
    expect(await webhooks.subscriptions({ externalId: "user-bob" })).toEqual([]);
    expect((await s.call("GET", "/api/v1/webhook-subscriptions", { key: s.keys.staging })).body.data).toEqual([]);
  });

  it("runs the source's tasks on the user's events (real payloads, real signatures), saying which connection they came through", async () => {
    const [hook] = hooksOf("alice/app");
    const [sub] = await webhooks.subscriptions({ externalId: "user-alice" });
    const push = await gh.deliver(hook!, "push", example("push"));
    expect(push.status).toBe(200);
    expect(push.body).toMatchObject({ id: push.deliveryId, duplicate: false });
    const [pushRun] = await runsOf("on-push");
    expect(push.body.runs).toEqual([pushRun!.id]);
    expect(pushRun!.payload).toMatchObject({ id: push.deliveryId, name: "push", payload: { ref: example("push").ref }, subscription: { id: sub!.id, integration: "github", externalId: "user-alice", repository: "alice/app" } });
    const opened = await gh.deliver(hook!, "issues", example("issues", "opened"));
    expect(opened.body.runs).toHaveLength(1);
    expect((await runsOf("on-issue-opened"))[0]!.payload.subscription.externalId).toBe("user-alice");
    // GitHub's redelivery of the same delivery starts nothing.
    const again = await gh.deliver(hook!, "push", example("push"), { deliveryId: push.deliveryId });
    expect([again.status, again.body.duplicate]).toEqual([200, true]);
    expect(await runsOf("on-push")).toHaveLength(1);
    const deliveries = (await s.call("GET", `/api/v1/webhook-sources/${SOURCE}/deliveries`)).body.data as Array<{ subscription: string | null; status: string }>;
    expect(deliveries.map((d) => [d.status, d.subscription])).toEqual([["DUPLICATE", sub!.id], ["ACCEPTED", sub!.id], ["ACCEPTED", sub!.id]]);
  });

  it("refuses a wrong signature, the source's own secret, and an unknown subscription; nothing runs", async () => {
    const [hook] = hooksOf("alice/app");
    const before = (await runsOf("on-push")).length;
    const forged = await gh.deliver(hook!, "push", example("push"), { secret: "not-the-hook-secret" });
    expect([forged.status, forged.body.error.code]).toEqual([401, "WEBHOOK_SIGNATURE_INVALID"]);
    expect((await s.call("POST", "/api/v1/envvars", { body: { variables: { GITHUB_WEBHOOK_SECRET: "source-level-secret-123" } } })).status).toBe(200);
    const sourceSecret = await gh.deliver(hook!, "push", example("push"), { secret: "source-level-secret-123" });
    expect(sourceSecret.status).toBe(401);
    const unknown = await gh.deliver({ ...hook!, config: { ...hook!.config, url: `${s.url}/api/v1/webhooks/demo/production/${SOURCE}/whs_${"0".repeat(24)}` } }, "push", example("push"));
    expect([unknown.status, unknown.body.error.code]).toEqual([404, "WEBHOOK_SUBSCRIPTION_NOT_FOUND"]);
    expect(unknown.body.error.message).toContain("no subscription");
    const otherEnv = await gh.deliver({ ...hook!, config: { ...hook!.config, url: hook!.config.url.replace("/production/", "/staging/") } }, "push", example("push"));
    expect(otherEnv.status).toBe(404);
    expect(await runsOf("on-push")).toHaveLength(before);
    const refused = (await s.call("GET", `/api/v1/webhook-sources/${SOURCE}/deliveries`)).body.data.filter((d: { status: string }) => d.status === "REJECTED");
    expect(refused.map((d: { failure: string }) => d.failure).join("\n")).toContain("no subscription");
  });
});

describe("bad subscribe input stores nothing and leaves no hook", () => {
  it("names the problem: someone else's repository (GitHub 404), GitHub's 422, unknown source, a stripe source, events no task takes, a non-GitHub integration, no connection, twice", async () => {
    const hooks = gh.hooks.length;
    const before = await rows();
    const notTheirs = await failure(webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-alice", repository: "bob/site" }));
    expect([notTheirs.status, notTheirs.code]).toEqual([404, "GITHUB_REPOSITORY_NOT_FOUND"]);
    expect(notTheirs.message).toContain("bob/site");
    // GitHub's 422: the repository already has 20 push hooks.
    for (let i = 0; i < 20; i++) gh.hooks.push({ id: 1 + i, repository: "alice/full", events: ["push"], active: true, config: { url: `https://ci.example.com/${i}`, content_type: "json", secret: "", insecure_ssl: "0" }, created_at: new Date().toISOString() });
    const full = await failure(webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-alice", repository: "alice/full", events: ["push"] }));
    expect([full.status, full.code]).toEqual([400, "GITHUB_REFUSED"]);
    expect(full.message).toContain('422 Validation Failed: The "push" event cannot have more than 20 hooks');
    expect(hooksOf("alice/full")).toHaveLength(20);
    gh.hooks.splice(0, gh.hooks.length, ...gh.hooks.filter((h) => h.repository !== "alice/full"));
    const unknownSource = await failure(webhooks.subscribe({ source: "nope", integration: "github", externalId: "user-alice", repository: "alice/app" }));
    expect([unknownSource.status, unknownSource.code]).toEqual([404, "WEBHOOK_SOURCE_NOT_FOUND"]);
    expect((await failure(webhooks.subscribe({ source: "billing", integration: "github", externalId: "user-alice", repository: "alice/lib" }))).message).toContain("only github sources");
    const events = await failure(webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-alice", repository: "alice/lib", events: ["pull_request"] }));
    expect([events.status, events.message]).toEqual([400, expect.stringContaining("no task of source repo-events listens to pull_request")]);
    expect((await failure(webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-alice", repository: "alice/lib", events: ["issues.opened"] }))).status).toBe(400);
    expect((await failure(webhooks.subscribe({ source: SOURCE, integration: "weather", repository: "alice/lib" }))).message).toContain("need a github integration");
    expect((await failure(webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-nobody", repository: "alice/lib" }))).code).toBe("CONNECTION_NOT_FOUND");
    expect((await failure(webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-alice", repository: "not a repo" }))).status).toBe(400);
    const twice = await failure(webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-alice", repository: "alice/app" }));
    expect([twice.status, twice.code]).toEqual([409, "WEBHOOK_SUBSCRIPTION_EXISTS"]);
    expect(gh.hooks.length).toBe(hooks);
    expect(await rows()).toEqual(before);
  });

  it("two concurrent subscribes of the same repository: one row and one hook; the loser's hook is deleted at GitHub", async () => {
    gh.faults.createDelayMs = 400;
    try {
      const both = await Promise.allSettled([0, 1].map(() => webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-alice", repository: "alice/lib" })));
      const won = both.filter((r) => r.status === "fulfilled");
      const lost = both.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect([won.length, lost.length]).toEqual([1, 1]);
      expect((lost[0]!.reason as StasisApiError).code).toBe("WEBHOOK_SUBSCRIPTION_EXISTS");
    } finally {
      gh.faults.createDelayMs = 0;
    }
    const stored = (await rows()).filter((r) => r.repository === "alice/lib");
    expect(stored).toHaveLength(1);
    expect(hooksOf("alice/lib").map((h) => h.id)).toEqual([stored[0]!.hook_id]);
    // Both reached GitHub (the delay kept the second from seeing the first's row), so a hook was deleted.
    expect(gh.calls.filter((c) => c.method === "DELETE" && c.path.startsWith("/repos/alice/lib/hooks/") && c.status === 204)).toHaveLength(1);
  });

  it("a create whose answer was lost (GitHub made the hook, then 502): Stasis finds its hook by URL and deletes it", async () => {
    gh.faults.createThen502 = true;
    const lost = await failure(webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-bob", repository: "bob/site" }));
    expect([lost.status, lost.code]).toEqual([502, "GITHUB_UNAVAILABLE"]);
    expect(lost.message).toContain("nothing was subscribed");
    expect(gh.calls.some((c) => c.method === "GET" && c.path === "/repos/bob/site/hooks")).toBe(true);
    expect(hooksOf("bob/site")).toEqual([]);
    expect((await rows()).filter((r) => r.repository === "bob/site")).toEqual([]);
  });

  it("a connection revoked at the provider: GitHub's 401 marks it broken and the error names CONNECTION_BROKEN; the next try does not ask GitHub", async () => {
    await s.idp.revoke(s.idp.latestRefreshToken("bob")!);
    const refused = await failure(webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-bob", repository: "bob/site" }));
    expect([refused.status, refused.code]).toEqual([409, "CONNECTION_BROKEN"]);
    expect(refused.message).toContain("Bad credentials");
    expect((await connections.list({ integration: "github" })).find((c) => c.externalId === "user-bob")!.status).toBe("broken");
    const calls = gh.calls.length;
    expect((await failure(webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-bob", repository: "bob/site" }))).code).toBe("CONNECTION_BROKEN");
    expect(gh.calls.length).toBe(calls);
    expect(hooksOf("bob/site")).toEqual([]);
  });
});

describe("removing", () => {
  it("unsubscribe deletes the hook at GitHub, then the row; a later delivery to it is refused", async () => {
    const [sub] = await webhooks.subscriptions({ externalId: "user-alice", source: SOURCE }).then((all) => all.filter((x) => x.repository === "alice/app"));
    const hook = hooksOf("alice/app")[0]!;
    expect(await webhooks.unsubscribe(sub!.id)).toEqual({ id: sub!.id, deleted: true, hookDeleted: true, hookError: null });
    expect(hooksOf("alice/app")).toEqual([]);
    expect((await rows()).map((r) => r.id)).not.toContain(sub!.id);
    expect((await gh.deliver(hook, "push", example("push"))).body.error.code).toBe("WEBHOOK_SUBSCRIPTION_NOT_FOUND");
    expect((await failure(webhooks.unsubscribe(sub!.id))).code).toBe("WEBHOOK_SUBSCRIPTION_NOT_FOUND");
  });

  it("with a broken connection, unsubscribe keeps the row and says CONNECTION_BROKEN; force removes it and says the hook is left", async () => {
    // Bob connects again, subscribes, then revokes Stasis at the provider.
    await connectUser("user-bob", "bob");
    const sub = await webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-bob", repository: "bob/site", events: ["push"] });
    await s.idp.revoke(s.idp.latestRefreshToken("bob")!);
    const kept = await failure(webhooks.unsubscribe(sub.id));
    expect([kept.status, kept.code]).toEqual([409, "CONNECTION_BROKEN"]);
    expect(kept.message).toContain("could not be deleted");
    expect((await rows()).map((r) => r.id)).toContain(sub.id);
    const forced = await webhooks.unsubscribe(sub.id, { force: true });
    expect(forced).toMatchObject({ id: sub.id, deleted: true, hookDeleted: false });
    expect(forced.hookError).toContain("broken");
    expect(hooksOf("bob/site").map((h) => h.id)).toEqual([sub.hookId]);
  });

  it("revoking a connection deletes its subscriptions' hooks at GitHub first", async () => {
    const app = await webhooks.subscribe({ source: SOURCE, integration: "github", externalId: "user-alice", repository: "alice/app" });
    expect(hooksOf("alice/app")).toHaveLength(1);
    const alice = (await connections.list({ integration: "github" })).find((c) => c.externalId === "user-alice")!;
    const revoked = await s.call("DELETE", `/api/v1/connections/${alice.id}`);
    expect(revoked.body).toEqual({ revoked: true, providerRevoked: true, subscriptionsDeleted: 2, hooksLeft: [] });
    expect([...hooksOf("alice/app"), ...hooksOf("alice/lib")]).toEqual([]);
    expect((await rows()).map((r) => r.id)).not.toContain(app.id);
  });
});

describe("housekeeping", () => {
  it("the scheduler deletes OAuth states and Connect links past their expiry (plus retention) in batches, and keeps the rest", async () => {
    const db = s.database.db;
    const integration = await db("integrations").where({ slug: "github" }).first("id");
    const old = Array.from({ length: 1_203 }, (_, i) => ({ state_hash: `old-${i}`, integration_id: integration.id, verifier_encrypted: Buffer.from("x"), expires_at: db.raw("now() - interval '1 hour'") }));
    for (let i = 0; i < old.length; i += 400) await db("oauth_states").insert(old.slice(i, i + 400));
    await db("connect_links").insert(Array.from({ length: 700 }, (_, i) => ({ token_hash: `old-${i}`, integration_id: integration.id, external_id: "x", redirect_to: APP, expires_at: db.raw("now() - interval '1 hour'") })));
    // Just expired: kept for the retention period, so it still answers "expired".
    const justExpired = await connections.createConnectLink({ integration: "github", externalId: "late", redirectTo: APP, expiresInSeconds: 1 });
    const live = await connections.createConnectLink({ integration: "github", externalId: "later", redirectTo: APP });
    await db("oauth_states").insert({ state_hash: "live", integration_id: integration.id, verifier_encrypted: Buffer.from("x"), expires_at: db.raw("now() + interval '10 minutes'") });
    await new Promise<void>((resolve) => { const t = setInterval(() => { if (Date.now() > new Date(justExpired.expiresAt).getTime() + 100) { clearInterval(t); resolve(); } }, 50); });
    await s.server.scheduler.tick();
    expect(Number((await db("oauth_states").where("state_hash", "like", "old-%").count("* as n"))[0]!.n)).toBe(0);
    expect(Number((await db("connect_links").where("token_hash", "like", "old-%").count("* as n"))[0]!.n)).toBe(0);
    expect(await db("oauth_states").where({ state_hash: "live" }).first("state_hash")).toBeTruthy();
    expect(await (await fetch(justExpired.url, { redirect: "manual" })).text()).toContain("LINK_EXPIRED");
    expect((await fetch(live.url, { redirect: "manual" })).status).toBe(303);
  });

  it("a token a run returns as output is stored redacted, like a printed one", async () => {
    await connectUser("user-carol", "carol");
    const f = s as unknown as ServerFixture;
    const runnerId = await registerRunner(f);
    const trig = await s.call("POST", "/api/v1/tasks/use-token/trigger", { body: { payload: {} } });
    const claimed = (await poll(f, runnerId, { waitMs: 2000 })).runs.find((r) => r.runId === trig.body.id)!;
    const token = await s.call("POST", `/api/v1/runner/runs/${claimed.runId}/connections/token`, { key: RUNNER_TOKEN, body: { leaseId: claimed.leaseId, integration: "github", externalId: "user-carol" } });
    expect(token.status).toBe(200);
    const output = { auth: `Bearer ${token.body.accessToken}`, nested: [token.body.accessToken], ok: true };
    const done = await s.call("POST", `/api/v1/runner/runs/${claimed.runId}/complete`, { key: RUNNER_TOKEN, body: { leaseId: claimed.leaseId, result: { ok: true, output } } });
    expect(done.status).toBe(200);
    const run = await s.call("GET", `/api/v1/runs/${claimed.runId}`);
    expect(run.body.output).toEqual({ auth: "Bearer [redacted:connection:github]", nested: ["[redacted:connection:github]"], ok: true });
    expect(JSON.stringify(await s.database.db("runs").where({ id: claimed.runId }).first("output"))).not.toContain(token.body.accessToken);
  });
});
