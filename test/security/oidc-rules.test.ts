// The OIDC exchange is an allow-list: tokens per event type and ref, signed by a local issuer
// (JWKS stand-in) and exchanged at the real server; preview keys act on their own preview only;
// a project linked to one repository refuses deploys built from another.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startActionStack, startOidcIssuer, type ActionStack, type OidcIssuer } from "../support/action-harness.ts";

const repository = "acme/hello";
const claims = (event_name: string, ref: string) => ({ repository, event_name, ref, sub: `repo:${repository}:ref:${ref}` });

let oidc: OidcIssuer;
let s: ActionStack;

beforeAll(async () => {
  oidc = await startOidcIssuer();
  s = await startActionStack(oidc);
  expect((await s.admin("POST", "/api/v1/admin/projects", { slug: "hello", repository })).status).toBe(200);
  expect((await s.admin("POST", "/api/v1/admin/projects", { slug: "foo-bar", repository: "acme/foo.bar" })).status).toBe(200);
});

afterAll(async () => {
  await s?.close();
  await oidc?.close();
});

const exchange = async (c: Record<string, unknown>, environment: string) => s.api("", "POST", "/api/v1/auth/oidc/exchange", { token: await oidc.sign(c), environment });
const tokenCount = async () => Number((await s.stack.db("deploy_tokens").count("* as n").first())?.n);

describe("OIDC exchange: tokens per event type and ref", () => {
  it("refuses, naming the rule, everything but a push to the default branch for production and a pull request for its own preview", async () => {
    const before = await tokenCount();
    const cases: Array<[Record<string, unknown>, string, string, RegExp]> = [
      [claims("push", "refs/heads/feature-x"), "production", "push-to-listed-ref", /production takes deploys only from a push to refs\/heads\/main, not refs\/heads\/feature-x/],
      [claims("workflow_dispatch", "refs/heads/main"), "production", "push-to-listed-ref", /only from a push .* this is a workflow_dispatch token for refs\/heads\/main/],
      [claims("schedule", "refs/heads/main"), "production", "push-to-listed-ref", /this is a schedule token/],
      [claims("push", "refs/tags/v1.0.0"), "production", "push-to-listed-ref", /not refs\/tags\/v1\.0\.0/],
      [claims("push", "refs/heads/main"), "staging", "push-to-listed-ref", /staging takes deploys only from a push to a listed ref \(none yet\)/],
      [claims("pull_request", "refs/pull/7/merge"), "production", "pull-request-own-preview", /pull request #7 may deploy only to preview\/pr-7, not production/],
      [claims("pull_request", "refs/pull/7/merge"), "preview/pr-8", "pull-request-own-preview", /may deploy only to preview\/pr-7, not preview\/pr-8/],
      [claims("pull_request", "refs/heads/feature-x"), "preview/pr-7", "pull-request-own-preview", /must carry ref refs\/pull\/<n>\/merge/],
      [claims("pull_request_target", "refs/heads/main"), "preview/pr-7", "no-pull-request-target", /carry the base branch's ref/],
      [claims("push", "refs/heads/feature-x"), "preview/pr-7", "previews-from-pull-requests", /only a pull_request token deploys a preview/],
      [claims("workflow_dispatch", "refs/heads/main"), "preview/pr-7", "previews-from-pull-requests", /this is a workflow_dispatch token/],
    ];
    for (const [c, environment, rule, text] of cases) {
      const res = await exchange(c, environment);
      expect(res.status, `${c.event_name} ${c.ref} → ${environment}`).toBe(403);
      expect(res.body.error.code).toBe("OIDC_REF_NOT_ALLOWED");
      expect(res.body.error.message).toContain(`rule "${rule}"`);
      expect(res.body.error.message).toMatch(text);
    }
    expect(await tokenCount()).toBe(before);
    expect(await s.stack.db("environments").where({ slug: "preview/pr-8" }).first()).toBeUndefined();
  });

  it("allows a push to the default branch, a pull request's own preview, and refs the project lists", async () => {
    expect((await exchange(claims("push", "refs/heads/main"), "production")).status).toBe(200);
    expect((await exchange(claims("pull_request", "refs/pull/7/merge"), "preview/pr-7")).status).toBe(200);

    const policy = await s.admin("PUT", "/api/v1/admin/projects/hello/deploy-policy", { defaultBranch: "trunk", refs: { production: ["refs/tags/v*"], staging: ["refs/heads/develop"] } });
    expect(policy.status).toBe(200);
    expect(policy.body).toEqual({ project: "hello", defaultBranch: "trunk", refs: { production: ["refs/tags/v*"], staging: ["refs/heads/develop"] } });
    expect((await exchange(claims("push", "refs/heads/trunk"), "production")).status).toBe(200);
    expect((await exchange(claims("push", "refs/tags/v1.0.0"), "production")).status).toBe(200);
    expect((await exchange(claims("push", "refs/heads/develop"), "staging")).status).toBe(200);
    // The old default branch no longer deploys production; develop does not deploy production.
    expect((await exchange(claims("push", "refs/heads/main"), "production")).status).toBe(403);
    expect((await exchange(claims("push", "refs/heads/develop"), "production")).status).toBe(403);

    const bad = await s.admin("PUT", "/api/v1/admin/projects/hello/deploy-policy", { refs: { "preview/pr-1": ["refs/heads/x"] } });
    expect(bad.status).toBe(400);
  });
});

describe("preview keys and linked repositories", () => {
  it("a preview's API key gets deploy tokens for its own preview only", async () => {
    const key = await s.admin("POST", "/api/v1/admin/projects/hello/environments", { slug: "preview/pr-3" });
    expect(key.status).toBe(200);
    const own = await s.api(key.body.apiKey, "POST", "/api/v1/auth/deploy-tokens", { environment: "preview/pr-3" });
    expect(own.status).toBe(200);
    for (const environment of ["preview/pr-4", "production", "staging"]) {
      const other = await s.api(key.body.apiKey, "POST", "/api/v1/auth/deploy-tokens", { environment });
      expect(other.status, environment).toBe(403);
      expect(other.body.error.code).toBe("PREVIEW_KEY_SCOPE");
      expect(other.body.error.message).toContain(`preview environment hello/preview/pr-3: it can get deploy tokens for preview/pr-3 only, not ${environment}`);
    }
    expect(await s.stack.db("environments").where({ slug: "preview/pr-4" }).first()).toBeUndefined();
  });

  it("the App's deploy token is refused for a repository other than the project's (acme/foo.bar vs other/foo-bar)", async () => {
    const refused = await s.admin("POST", "/api/v1/admin/projects/foo-bar/deploy-tokens", { environment: "production", repository: "other/foo-bar" });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("PROJECT_LINKED_ELSEWHERE");
    expect(refused.body.error.message).toContain("project foo-bar is linked to the repository acme/foo.bar, not other/foo-bar");
    const own = await s.admin("POST", "/api/v1/admin/projects/foo-bar/deploy-tokens", { environment: "production", repository: "Acme/Foo.Bar" });
    expect(own.status).toBe(200);
  });
});
