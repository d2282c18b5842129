import { Octokit } from "@octokit/core";

export interface InstallationToken {
  token: string;
  expiresAt: Date;
}

export interface InstallationTokens {
  /** A token for the installation, fetched with the App JWT and reused until shortly before it expires. */
  token(installationId: number): Promise<string>;
  /** An Octokit authenticated as the installation. */
  octokit(installationId: number): Promise<Octokit>;
}

export interface InstallationTokensOptions {
  /** Mints a fresh token (`POST /app/installations/{id}/access_tokens` with the App JWT). */
  mint(installationId: number): Promise<InstallationToken>;
  OctokitClass: typeof Octokit;
  /** Refresh this long before `expires_at` (default 5 minutes), so no call starts with a token about to lapse. */
  refreshBeforeMs?: number;
  now?: () => number;
}

export function createInstallationTokens(options: InstallationTokensOptions): InstallationTokens {
  const refreshBeforeMs = options.refreshBeforeMs ?? 5 * 60_000;
  const now = options.now ?? Date.now;
  const cache = new Map<number, Promise<{ token: InstallationToken; octokit: Octokit }>>();

  const entry = async (installationId: number) => {
    const cached = cache.get(installationId);
    if (cached) {
      const value = await cached.catch(() => null);
      if (value && value.token.expiresAt.getTime() - refreshBeforeMs > now()) return value;
      if (cache.get(installationId) !== cached) return entry(installationId);
    }
    const fresh = options.mint(installationId).then((token) => ({ token, octokit: new options.OctokitClass({ auth: token.token }) }));
    cache.set(installationId, fresh);
    fresh.catch(() => cache.get(installationId) === fresh && cache.delete(installationId));
    return fresh;
  };

  return {
    token: async (installationId) => (await entry(installationId)).token.token,
    octokit: async (installationId) => (await entry(installationId)).octokit,
  };
}
