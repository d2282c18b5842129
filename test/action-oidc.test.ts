// GitHub OIDC → deploy token, against a local issuer (JWKS + the runner's ID-token endpoint) and the
// real server, database and registry.
import { createServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type TestRegistry } from "./support/registry.ts";
import { runDist, startActionStack, startOidcIssuer, webhookPayload, type ActionStack, type OidcIssuer } from "./support/action-harness.ts";

const repository = "acme/hello";
const pushClaims = { repository, event_name: "push", ref: "refs/heads/main", sub: `repo:${repository}:ref:refs/heads/main` };

describe("OIDC exchange and deploy tokens", () => {
  let oidc: OidcIssuer;
  let s: ActionStack;
  let registry: TestRegistry;

  beforeAll(async () => {
    oidc = await startOidcIssuer();
    registry = await startRegistry();
    // The server accepts images only from configured registries.
    process.env.STASIS_ALLOWED_REGISTRIES = `${registry.host},oci-layout:*`;
    s = await startActionStack(oidc);
    expect((await s.admin("POST", "/api/v1/admin/projects", { slug: "hello", repository: "https://github.com/Acme/Hello.git" })).status).toBe(200);
    expect((await s.admin("POST", "/api/v1/admin/projects", { slug: "other", repository: "acme/other" })).status).toBe(200);
  });
  afterAll(async () => {
    delete process.env.STASIS_ALLOWED_REGISTRIES;
    await s?.close();
    await registry?.stop();
    await oidc?.close();
  });

  const exchange = (token: string, environment = "production", project?: string) => s.api("", "POST", "/api/v1/auth/oidc/exchange", { token, environment, ...(project ? { project } : {}) });

  it("refuses a wrong audience, a wrong repository, an expired token and a bad signature, each saying which", async () => {
    const cases = [
      { token: await oidc.sign(pushClaims, { audience: "sts.amazonaws.com" }), code: "OIDC_WRONG_AUDIENCE", text: 'wrong audience "sts.amazonaws.com"; this server accepts "stasis"' },
      { token: await oidc.sign({ ...pushClaims, repository: "mallory/hello" }), code: "OIDC_WRONG_REPOSITORY", text: "wrong repository: mallory/hello is not linked to any Stasis project" },
      { token: await oidc.sign({ ...pushClaims, repository: "acme/other" }), project: "hello", code: "OIDC_WRONG_REPOSITORY", text: "the token is for acme/other, but project hello is linked to" },
      { token: await oidc.sign(pushClaims, { issuedAt: Math.floor(Date.now() / 1000) - 3600, expiresIn: Math.floor(Date.now() / 1000) - 1800 }), code: "OIDC_EXPIRED", text: "expired" },
      { token: await oidc.sign(pushClaims, { foreignKey: true }), code: "OIDC_BAD_SIGNATURE", text: "bad signature" },
      { token: "not-a-jwt", code: "OIDC_INVALID", text: "not a valid JWT" },
    ];
    for (const c of cases) {
      const res = await exchange(c.token, "production", c.project);
      expect(res.status, c.code).toBe(401);
      expect(res.body.error.code).toBe(c.code);
      expect(res.body.error.message).toContain(c.text);
    }
    expect(Number((await s.stack.db("deploy_tokens").count("* as n").first())?.n)).toBe(0);
  });

  it("mints a scoped, expiring deploy token; a pull_request token gets previews only", async () => {
    const good = await exchange(await oidc.sign(pushClaims));
    expect(good.status).toBe(200);
    expect(good.body).toMatchObject({ project: "hello", environment: "production", archived: false });
    const minutes = (Date.parse(good.body.expiresAt) - Date.now()) / 60_000;
    expect(minutes).toBeGreaterThan(14);
    expect(minutes).toBeLessThanOrEqual(15);
    const row = await s.stack.db("deploy_tokens").first();
    expect(row.token_hash).not.toContain(good.body.token.slice(3));
    expect(row.subject).toBe(pushClaims.sub);

    // Deploy routes only: the token cannot trigger runs.
    expect((await s.api(good.body.token, "GET", "/api/v1/deployments")).status).toBe(200);
    const trigger = await s.api(good.body.token, "POST", "/api/v1/tasks/hello/trigger", { payload: {} });
    expect(trigger.status).toBe(403);
    expect(trigger.body.error.message).toContain("a deploy token may only deploy");

    await s.stack.db("deploy_tokens").update({ expires_at: new Date(Date.now() - 1000) });
    const late = await s.api(good.body.token, "GET", "/api/v1/deployments");
    expect(late.status).toBe(401);
    expect(late.body.error.message).toContain("deploy token expired");

    const prClaims = { ...pushClaims, event_name: "pull_request", ref: "refs/pull/7/merge" };
    const prod = await exchange(await oidc.sign(prClaims));
    expect(prod.status).toBe(403);
    expect(prod.body.error.message).toContain("may deploy only to preview/pr-7, not production");
    const preview = await exchange(await oidc.sign(prClaims), "preview/pr-7");
    expect(preview.status).toBe(200);
    expect(await s.stack.db("environments").where({ slug: "preview/pr-7" }).first()).toBeTruthy();
  });

  it("the action deploys with the job's OIDC token (no secret) to the real registry", async () => {
    oidc.claims = pushClaims;
    const result = await runDist({
      event: "push",
      payload: webhookPayload("push", null, repository),
      inputs: { "api-url": s.stack.apiUrl, "working-directory": "examples/hello", registry: `${registry.host}/acme/hello` },
      env: { ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken },
    });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain("authenticated for hello/production (GitHub OIDC");
    expect(result.outputs.image).toMatch(new RegExp(`^${registry.host}/acme/hello@sha256:[a-f0-9]{64}$`));
    const digest = result.outputs.image.split("@")[1];
    const manifest = await fetch(`${registry.url}/v2/acme/hello/manifests/${digest}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
    expect(manifest.status).toBe(200);
    const row = await s.stack.db("deployments").where({ id: result.outputs["deployment-id"] }).first();
    expect(row).toMatchObject({ status: "DEPLOYED", version: result.outputs.version, image_digest: digest });
    expect(result.summary).toContain(result.outputs.image);
  });

  it("the action says what to fix when the server refuses the OIDC token or none is available", async () => {
    oidc.claims = pushClaims;
    const base = { event: "push", payload: webhookPayload("push", null, repository) };
    const inputs = { "api-url": s.stack.apiUrl, "working-directory": "examples/hello", registry: `${registry.host}/acme/hello` };
    const wrongAudience = await runDist({ ...base, inputs: { ...inputs, "oidc-audience": "not-stasis" }, env: { ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken } });
    expect(wrongAudience.code).toBe(1);
    expect(wrongAudience.stdout).toContain("::error::Stasis deploy failed: OIDC token refused: wrong audience");
    // The hint fits the refusal: an audience problem is not a linking problem.
    expect(wrongAudience.stdout).toContain("set the action's oidc-audience input to the server's STASIS_OIDC_AUDIENCE");
    expect(wrongAudience.stdout).not.toContain("link-repo");
    // A failed deploy still writes a job summary, with the error; the environment output is set once at most.
    expect(wrongAudience.summary).toContain("## Stasis: deploy failed for `production`");
    expect(wrongAudience.summary).toContain("OIDC token refused: wrong audience");

    oidc.claims = { ...pushClaims, repository: "mallory/hello" };
    const unlinked = await runDist({ ...base, inputs, env: { ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken } });
    expect(unlinked.code).toBe(1);
    expect(unlinked.stdout).toContain("stasis projects link-repo <project> <owner/name>");
    expect(unlinked.stdout).not.toContain("oidc-audience");
    oidc.claims = pushClaims;

    const noPermission = await runDist({ ...base, inputs });
    expect(noPermission.code).toBe(1);
    expect(noPermission.stdout).toContain("add `permissions: id-token: write` to the job");
  });

  it("gives up on a server that accepts connections and never answers, saying so", async () => {
    const held: Socket[] = [];
    const silent = createServer((socket) => void held.push(socket)); // holds every connection open, answers nothing
    await new Promise<void>((done) => silent.listen(0, "127.0.0.1", done));
    try {
      const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
      const started = Date.now();
      const result = await runDist({ event: "push", payload: webhookPayload("push", null, repository), inputs: { "api-url": url, "api-key": "sk_production_x", "working-directory": "examples/hello" }, env: { STASIS_API_TIMEOUT_MS: "1500" } });
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`::error::Stasis deploy failed: the Stasis server at ${url} did not answer POST /api/v1/auth/deploy-tokens within 1.5 s`);
      expect(Date.now() - started).toBeLessThan(60_000);
    } finally {
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });
});
