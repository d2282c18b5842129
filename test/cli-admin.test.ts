// Running Stasis for real without curl: `stasis projects|environments|keys` with the server's admin
// token, as an operator runs them (child processes against the real stack).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliResult } from "./support/cli.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
let cwd: string;

beforeAll(async () => {
  stack = await startTestStack({ project: "admin-cli", runners: 0 });
  cwd = await mkdtemp(join(tmpdir(), "stasis-admin-cli-"));
});

afterAll(async () => {
  await stack?.stop();
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

function stasis(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCli(args, { cwd, env: { STASIS_API_URL: stack.apiUrl, STASIS_ADMIN_TOKEN: stack.local.adminToken, STASIS_API_KEY: undefined, ...env } });
}

async function json<T>(args: string[]): Promise<T> {
  const result = await stasis([...args, "--json"]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}

async function whoami(key: string): Promise<number> {
  const response = await fetch(`${stack.apiUrl}/api/v1/whoami`, { headers: { authorization: `Bearer ${key}` } });
  return response.status;
}

describe("stasis projects, environments and keys", () => {
  it("creates a project linked to a repository, with keys for its three environments that work", async () => {
    const created = await json<{ created: boolean; environments: Array<{ environment: string; apiKey: string }> }>(["projects", "create", "shop", "--repository", "acme/shop"]);
    expect(created.created).toBe(true);
    expect(created.environments.map((e) => e.environment).sort()).toEqual(["development", "production", "staging"]);
    for (const { apiKey } of created.environments) expect(await whoami(apiKey)).toBe(200);

    const list = await json<{ data: Array<{ slug: string; repository: string | null; environments: Array<{ slug: string }> }> }>(["projects", "list"]);
    expect(list.data.find((p) => p.slug === "shop")).toMatchObject({ repository: "acme/shop", environments: [{ slug: "development" }, { slug: "production" }, { slug: "staging" }] });
    const human = await stasis(["projects", "list"]);
    expect(human.stdout).toMatch(/^shop\s+acme\/shop\s+development, production, staging$/m);
  });

  it("refuses to link one repository to two projects, naming the other", async () => {
    await json(["projects", "create", "shop-two"]);
    const clash = await stasis(["projects", "link-repo", "shop-two", "acme/shop"]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain("acme/shop is already linked to project shop");
    expect((await json<{ repository: string | null }>(["projects", "link-repo", "shop-two", "acme/shop-two"])).repository).toBe("acme/shop-two");
    const bad = await stasis(["projects", "link-repo", "shop-two", "not a repo"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/repository is owner\/name/);
  });

  it("a new key leaves the others working; --revoke-others rotates; revoke ends one key", async () => {
    const first = await json<{ apiKey: string; id: string }>(["keys", "create", "--project", "shop", "--env", "staging"]);
    const second = await json<{ apiKey: string; id: string; revoked: number }>(["keys", "create", "--project", "shop", "--env", "staging"]);
    expect(second.revoked).toBe(0);
    expect(await whoami(first.apiKey)).toBe(200);
    expect(await whoami(second.apiKey)).toBe(200);

    await json(["keys", "revoke", first.id, "--project", "shop", "--env", "staging"]);
    expect(await whoami(first.apiKey)).toBe(401);
    expect(await whoami(second.apiKey)).toBe(200);

    const rotated = await json<{ apiKey: string; revoked: number }>(["keys", "create", "--project", "shop", "--env", "staging", "--revoke-others"]);
    expect(rotated.revoked).toBeGreaterThanOrEqual(2); // the second key and the one the project was created with
    expect(await whoami(second.apiKey)).toBe(401);
    expect(await whoami(rotated.apiKey)).toBe(200);

    const keys = await json<{ data: Array<{ id: string; revokedAt: string | null }> }>(["keys", "list", "--project", "shop", "--env", "staging"]);
    expect(keys.data.filter((k) => k.revokedAt === null)).toHaveLength(1);
    expect(JSON.stringify(keys)).not.toContain(rotated.apiKey); // listing never shows a key

    const unknown = await stasis(["keys", "revoke", "00000000-0000-0000-0000-000000000000", "--project", "shop", "--env", "staging"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/key 0{8}-.* does not exist in shop\/staging/);
  });

  it("lists and archives environments; an archived preview refuses new runs", async () => {
    // A preview is made by its first deploy or by the App, not by `keys create`.
    const missing = await stasis(["keys", "create", "--project", "shop", "--env", "preview/pr-9"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("environment shop/preview/pr-9 does not exist");
    const response = await fetch(`${stack.apiUrl}/api/v1/admin/projects/shop/environments`, { method: "POST", headers: { authorization: `Bearer ${stack.local.adminToken}`, "content-type": "application/json" }, body: JSON.stringify({ slug: "preview/pr-9" }) });
    const { apiKey } = (await response.json()) as { apiKey: string };

    const list = await json<{ data: Array<{ slug: string; archived: boolean }> }>(["environments", "list", "--project", "shop"]);
    expect(list.data).toContainEqual(expect.objectContaining({ slug: "preview/pr-9", archived: false }));
    await json(["environments", "archive", "preview/pr-9", "--project", "shop"]);
    const after = await json<{ data: Array<{ slug: string; archived: boolean }> }>(["environments", "list", "--project", "shop"]);
    expect(after.data).toContainEqual(expect.objectContaining({ slug: "preview/pr-9", archived: true }));

    const trigger = await fetch(`${stack.apiUrl}/api/v1/tasks/hello/trigger`, { method: "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body: JSON.stringify({ payload: {} }) });
    expect(trigger.status).toBe(409);
  });

  it("without admin credentials it exits 2 and says what to set; a wrong token exits 2", async () => {
    const none = await stasis(["projects", "list"], { STASIS_ADMIN_TOKEN: undefined });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/STASIS_ADMIN_TOKEN/);
    const wrong = await stasis(["projects", "list"], { STASIS_ADMIN_TOKEN: "adm_wrong" });
    expect(wrong.code).toBe(2);
    const apiKey = await stasis(["projects", "list"], { STASIS_ADMIN_TOKEN: stack.keys.production });
    expect(apiKey.code).toBe(2);
  });
});
