import { App } from "@octokit/app";
import { Octokit } from "@octokit/core";
import type { GithubAppConfig } from "./config.ts";
import { createInstallationTokens, type InstallationTokens } from "./installation-tokens.ts";

export interface GithubClient {
  /** HMAC-SHA256 of the raw body against `X-Hub-Signature-256`, compared in constant time. */
  verify(rawBody: string, signature: string): Promise<boolean>;
  tokens: InstallationTokens;
}

/** The App's identity: a JWT signed with its private key, exchanged for installation tokens. */
export function createGithubClient(config: Pick<GithubAppConfig, "appId" | "privateKey" | "webhookSecret" | "apiUrl">): GithubClient {
  const OctokitClass = Octokit.defaults({ baseUrl: config.apiUrl, userAgent: "stasis-github-app" });
  const app = new App({ appId: config.appId, privateKey: config.privateKey, webhooks: { secret: config.webhookSecret }, Octokit: OctokitClass });
  const tokens = createInstallationTokens({
    OctokitClass,
    async mint(installationId) {
      const { data } = await app.octokit.request("POST /app/installations/{installation_id}/access_tokens", { installation_id: installationId });
      return { token: data.token, expiresAt: new Date(data.expires_at) };
    },
  });
  return {
    verify: (rawBody, signature) => app.webhooks.verify(rawBody, signature).catch(() => false),
    tokens,
  };
}
