// `stasis env …`, `stasis admin rotate-key` and the SDK's `envvars` as a user runs them, against the
// real stack (its master key generated into the state dir, mode 0600).
import { statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configure, envvars } from "stasis/sdk";
import { runCli, type CliResult } from "./support/cli.ts";
import { startTestStack, type TestStack } from "./support/stack.ts";

let stack: TestStack;
let cwd: string;

beforeAll(async () => {
  stack = await startTestStack({ project: "clienv", runners: 0 });
  cwd = await mkdtemp(join(tmpdir(), "stasis-cli-env-"));
});

afterAll(async () => {
  await stack?.stop();
  if (cwd) await rm(cwd, { recursive: true, force: true });
});

function stasis(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runCli(args, { cwd, env: { STASIS_API_URL: stack.apiUrl, STASIS_API_KEY: stack.keys.staging, STASIS_ADMIN_TOKEN: undefined, ...env } });
}

describe("stasis env", () => {
  it("the local stack generated its master key with mode 0600", () => {
    expect(statSync(join(stack.stateDir, "encryption.key")).mode & 0o777).toBe(0o600);
  });

  it("set, list (hidden, --reveal, --json), unset in the key's own environment", async () => {
    const set = await stasis(["env", "set", "DB_URL=postgres://u:p@db/x?a=b", "MODE=fast"]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain("set DB_URL, MODE in clienv/staging");
    const hidden = await stasis(["env", "list"]);
    expect(hidden.stdout).toMatch(/DB_URL\s+••••••/);
    expect(hidden.stdout).not.toContain("postgres://");
    const shown = JSON.parse((await stasis(["env", "list", "--reveal", "--json"])).stdout);
    expect(shown).toMatchObject({ project: "clienv", environment: "staging", data: [{ name: "DB_URL", value: "postgres://u:p@db/x?a=b" }, { name: "MODE", value: "fast" }] });
    expect((await stasis(["env", "unset", "MODE"])).stdout).toContain("unset MODE in clienv/staging");
  });

  it("refuses a bad name with a usage error naming the rule, before calling the server", async () => {
    const bad = await stasis(["env", "set", "9LIVES=x"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/\^\[A-Za-z_\]/);
    const reserved = await stasis(["env", "set", "STASIS_ADMIN_TOKEN=x"]);
    expect(reserved.code).toBe(2);
    expect(reserved.stderr).toMatch(/reserved/);
  });

  it("--env of another environment needs the admin token; with it, import a .env there and into the preview set", async () => {
    const refused = await stasis(["env", "set", "X_ONE=1", "--env", "production"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/admin token/);
    const file = join(cwd, "prod.env");
    await writeFile(file, "# production\nAPI_BASE=https://api.example.com\nexport RETRIES='5'\n");
    const imported = await stasis(["env", "import", file, "--env", "production"], { STASIS_ADMIN_TOKEN: stack.local.adminToken });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain("imported 2 variable(s) into clienv/production");
    const prod = JSON.parse((await stasis(["env", "list", "--reveal", "--json"], { STASIS_API_KEY: stack.keys.production })).stdout);
    expect(prod.data.map((v: { name: string; value: string }) => [v.name, v.value])).toEqual([["API_BASE", "https://api.example.com"], ["RETRIES", "5"]]);
    const preview = await stasis(["env", "set", "SHARED=yes", "--env", "preview"], { STASIS_ADMIN_TOKEN: stack.local.adminToken });
    expect(preview.code, preview.stderr).toBe(0);
  });

  it("the SDK's envvars act on the configured key's environment", async () => {
    configure({ apiUrl: stack.apiUrl, apiKey: stack.keys.development });
    expect(await envvars.set({ FROM_SDK: "sdk-value" })).toEqual(["FROM_SDK"]);
    expect(await envvars.get("FROM_SDK")).toBe("sdk-value");
    expect(await envvars.get("API_BASE")).toBeUndefined(); // production's, not development's
    expect((await envvars.list()).map((v) => [v.name, v.value])).toEqual([["FROM_SDK", undefined]]);
    expect(await envvars.delete("FROM_SDK")).toBe(true);
    expect(await envvars.list({ reveal: true })).toEqual([]);
  });

  it("stasis server refuses to start without STASIS_ENCRYPTION_KEY, with a malformed one, and with one that did not write the database", async () => {
    const base = { DATABASE_URL: stack.database.url, STASIS_ADMIN_TOKEN: "admin-token-0123456789abcdef", STASIS_RUNNER_TOKEN: "runner-token-0123456789abcdef", STASIS_API_KEY: undefined };
    const args = ["server", "--port", "0", "--json"];
    const missing = await stasis(args, { ...base, STASIS_ENCRYPTION_KEY: undefined });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/STASIS_ENCRYPTION_KEY is not set/);
    const malformed = await stasis(args, { ...base, STASIS_ENCRYPTION_KEY: "hunter2" });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/32 random bytes written as base64 \(44 characters\) or hex \(64 characters\)/);
    const wrong = await stasis(args, { ...base, STASIS_ENCRYPTION_KEY: "ab".repeat(32) });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/STASIS_ENCRYPTION_KEY is wrong \(rule: every wrapped data key's master key id must match/);
    expect(wrong.stdout).toBe("");
  });

  it("stasis admin rotate-key re-wraps nothing when every data key is under the current key", async () => {
    const result = await stasis(["admin", "rotate-key", "--json"], { STASIS_ADMIN_TOKEN: stack.local.adminToken });
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ rewrapped: 0, total: 1 });
  });
});
