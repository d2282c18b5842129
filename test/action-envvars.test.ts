// Issue 10 through the Action: one variable set to different values in production and in a pull
// request's preview, each deployed by the action (action/dist/index.js run as GitHub's runner runs
// it, authenticated by the job's OIDC token), one run in each environment on a real runner; then a
// master key rotation (`stasis admin rotate-key`) and the runs still get their values.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKeyring, parseMasterKey } from "../server/index.ts";
import { runDist, startActionStack, startOidcIssuer, webhookPayload, type ActionStack, type OidcIssuer } from "./support/action-harness.ts";
import { masterKeyId, rotateMasterKey, runToEnd, type RotatedStack } from "./support/envvar-runs.ts";

const repository = "acme/envvars";
const KEY_A = randomBytes(32).toString("base64");
const KEY_B = randomBytes(32).toString("base64");
// Different lengths: the fixture's task returns the length of what it read, and logs the value (redacted).
const PRODUCTION_VALUE = `prod-${randomBytes(6).toString("hex")}`;
const PREVIEW_VALUE = `preview-${randomBytes(9).toString("hex")}`;

describe("environment variables, deployed through the Action", () => {
  let oidc: OidcIssuer;
  let s: ActionStack;
  let rotated: RotatedStack | null = null;
  let preview = "";
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    oidc = await startOidcIssuer();
    s = await startActionStack(oidc, { runners: 1, keyring: createKeyring(parseMasterKey(KEY_A)) });
    expect((await s.admin("POST", "/api/v1/admin/projects", { slug: "envvars", repository })).status).toBe(200);
  });
  afterAll(async () => {
    await rotated?.close();
    await s?.close();
    await oidc?.close();
  });

  const deploy = async (event: "push" | "pull_request", claims: Record<string, unknown>) => {
    oidc.claims = { repository, sub: `repo:${repository}:ref:${claims.ref}`, ...claims };
    const payload = webhookPayload(event, event === "pull_request" ? "opened" : null, repository);
    const result = await runDist({
      event,
      payload,
      inputs: { "api-url": s.stack.apiUrl, "working-directory": "test/fixtures/envvars", registry: `oci-layout:${s.stack.dirs.images}` },
      env: { ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken },
    });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    return { result, payload };
  };

  async function expectOwnValues(apiUrl: string) {
    for (const [environment, value] of [["production", PRODUCTION_VALUE], [preview, PREVIEW_VALUE]]) {
      const { run, logs } = await runToEnd(apiUrl, keys[environment], "show-env");
      expect(run.status, logs.join("\n")).toBe("COMPLETED");
      expect(run.output, environment).toEqual({ length: value.length });
      expect(logs).toContain("secret is [redacted:GREETING_SECRET]");
      expect(logs.join("\n")).not.toContain(value);
    }
  }

  it("production (a push to main) and the pull request's preview each get their own value, in one run each", async () => {
    const production = await deploy("push", { event_name: "push", ref: "refs/heads/main" });
    expect(production.result.outputs.environment).toBe("production");
    const number = webhookPayload("pull_request", "opened", repository).pull_request.number as number;
    const pr = await deploy("pull_request", { event_name: "pull_request", ref: `refs/pull/${number}/merge` });
    preview = `preview/pr-${number}`;
    expect(pr.result.outputs.environment).toBe(preview);

    for (const [environment, value] of [["production", PRODUCTION_VALUE], [preview, PREVIEW_VALUE]]) {
      const path = `/api/v1/admin/projects/envvars/environments/${encodeURIComponent(environment)}`;
      expect((await s.admin("POST", `${path}/envvars`, { variables: { GREETING_SECRET: value } })).status).toBe(200);
      const key = await s.admin("POST", `${path}/keys`, {});
      expect(key.status).toBe(200);
      keys[environment] = key.body.apiKey;
    }
    await expectOwnValues(s.stack.apiUrl);
  });

  it("after `stasis admin rotate-key` (the new key in STASIS_ENCRYPTION_KEY, the old in STASIS_ENCRYPTION_KEY_PREVIOUS), new runs still get their values", async () => {
    rotated = await rotateMasterKey(s.stack, KEY_A, KEY_B);
    expect(rotated.result).toEqual({ rewrapped: 1, total: 1, masterKeyId: masterKeyId(KEY_B) });
    expect(rotated.wrappedBy).toEqual([masterKeyId(KEY_B)]);
    await expectOwnValues(rotated.apiUrl);
  });
});
