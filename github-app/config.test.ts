import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { gitUrlFor, loadGithubAppConfig } from "./config.ts";

const pem = generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs8", format: "pem" }, publicKeyEncoding: { type: "spki", format: "pem" } }).privateKey;
const base = { GITHUB_APP_ID: "123", GITHUB_APP_PRIVATE_KEY: pem, GITHUB_WEBHOOK_SECRET: "s3cret-value", STASIS_API_URL: "http://127.0.0.1:3030", STASIS_ADMIN_TOKEN: "a".repeat(32) };

describe("GitHub App config", () => {
  it("defaults to api.github.com, clones from github.com, refuses fork builds", () => {
    const config = loadGithubAppConfig(base);
    expect(config).toMatchObject({ apiUrl: "https://api.github.com", gitUrl: "https://github.com", allowForkBuilds: false, buildConcurrency: 2, buildTimeoutMs: 900_000, registry: null });
  });

  it("reads the private key from a file path, and branch environments", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stasis-app-config-"));
    try {
      await writeFile(join(dir, "app.pem"), pem);
      const config = loadGithubAppConfig({ ...base, GITHUB_APP_PRIVATE_KEY: join(dir, "app.pem"), STASIS_BRANCH_ENVIRONMENTS: "develop=staging", STASIS_ALLOW_FORK_BUILDS: "1" });
      expect(config.privateKey).toBe(pem);
      expect(config.branchEnvironments).toEqual({ develop: "staging" });
      expect(config.allowForkBuilds).toBe(true);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it("names every missing or bad variable, and never echoes the secret values", () => {
    const attempt = () => loadGithubAppConfig({ GITHUB_APP_ID: "abc", GITHUB_WEBHOOK_SECRET: "s3cret-value", STASIS_API_URL: "nope" });
    expect(attempt).toThrow(/GITHUB_APP_ID: the App's numeric id/);
    expect(attempt).toThrow(/GITHUB_APP_PRIVATE_KEY: is not set/);
    expect(attempt).toThrow(/STASIS_API_URL/);
    expect(attempt).toThrow(/STASIS_ADMIN_TOKEN: is not set/);
    expect(attempt).not.toThrow(/s3cret-value/);
    expect(() => loadGithubAppConfig({ ...base, GITHUB_APP_PRIVATE_KEY: "/no/such/key.pem" })).toThrow("GITHUB_APP_PRIVATE_KEY is neither PEM text nor the path of an existing file");
  });

  it("derives the git host from GitHub Enterprise's API URL", () => {
    expect(gitUrlFor("https://ghe.example.com/api/v3")).toBe("https://ghe.example.com");
    expect(gitUrlFor("http://127.0.0.1:4000")).toBe("http://127.0.0.1:4000");
  });
});
