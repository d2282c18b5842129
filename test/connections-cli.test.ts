// `stasis integrations add|list|remove` as a user runs them (child processes), against a real server
// and a real OpenID Provider (discovery at add time).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "./support/cli.ts";
import { startConnectionsStack, type ConnectionsStack } from "./support/connections.ts";
import { CLIENT } from "./support/oidc-provider.ts";

let s: ConnectionsStack;
beforeAll(async () => {
  s = await startConnectionsStack({ accessTokenTtlSeconds: 60 });
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

describe("stasis integrations (CLI)", () => {
  const stasis = (args: string[], env: Record<string, string | undefined> = {}) =>
    runCli(args, { cwd: process.cwd(), env: { STASIS_API_URL: s.url, STASIS_API_KEY: s.keys.staging, STASIS_ADMIN_TOKEN: undefined, ...env } });

  it("adds (secret from the environment), lists with --json and removes an integration of the key's environment", async () => {
    const added = await stasis(["integrations", "add", "idp", "--provider", "oidc", "--issuer", s.idp.issuer, "--client-id", CLIENT.id, "--scopes", "openid,email offline_access"], { STASIS_CLIENT_SECRET: CLIENT.secret });
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain("added integration idp");
    const listed = await stasis(["integrations", "list", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    const json = JSON.parse(listed.stdout);
    expect(json).toMatchObject({ project: "demo", environment: "staging", data: [{ slug: "idp", provider: "oidc", scopes: ["openid", "email", "offline_access"], clientSecretSet: true }], connections: [] });
    expect(listed.stdout).not.toContain(CLIENT.secret);
    const bad = await stasis(["integrations", "add", "x", "--provider", "oidc", "--client-id", "x"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("issuer");
    const removed = await stasis(["integrations", "remove", "idp", "--json"]);
    expect(JSON.parse(removed.stdout)).toEqual({ deleted: true, connectionsDeleted: 0, subscriptionsDeleted: 0, hooksLeft: [] });
    // Webhook subscriptions (made with connections; test/connections-subscriptions.test.ts covers them against a GitHub stand-in).
    const subscriptions = await stasis(["webhooks", "subscriptions", "--json"]);
    expect(subscriptions.code, subscriptions.stderr).toBe(0);
    expect(JSON.parse(subscriptions.stdout)).toEqual({ project: "demo", environment: "staging", data: [] });
    const unknown = await stasis(["webhooks", "unsubscribe", `whs_${"0".repeat(24)}`]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("no webhook subscription");
  });
});
