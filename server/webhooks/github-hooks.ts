import { Octokit } from "@octokit/core";

/**
 * GitHub's repository webhooks REST API (`/repos/{owner}/{repo}/hooks`), called with a connection's
 * token through @octokit/core. Failures come back as a `GithubRefusal` with GitHub's status and
 * message, so callers can tell "not found / not allowed" (4xx) from "GitHub did not answer" (network,
 * 5xx: `status` 0 or ≥ 500), where a hook may or may not have been made.
 */
export class GithubRefusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "GithubRefusal";
  }
}

export interface GithubHook {
  id: number;
  events: string[];
  config: { url?: string };
}

const TIMEOUT_MS = 15_000;

function client(apiUrl: string, token: string): Octokit {
  return new Octokit({ auth: token, baseUrl: apiUrl, userAgent: "stasis-webhook-subscriptions", request: { fetch: (url: string, init: RequestInit) => fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) }) } });
}

/** GitHub's own words: `message` plus each validation error's message (422 "Validation Failed" alone says little). */
function refusal(error: unknown): GithubRefusal {
  const e = error as { status?: unknown; message?: unknown; response?: { data?: { message?: unknown; errors?: Array<{ message?: unknown; code?: unknown; field?: unknown }> } } };
  const status = typeof e.status === "number" && e.status >= 100 ? e.status : 0;
  const data = e.response?.data;
  const details = (data?.errors ?? []).map((x) => (typeof x.message === "string" ? x.message : [x.field, x.code].filter(Boolean).join(" "))).filter(Boolean);
  const base = typeof data?.message === "string" ? data.message : error instanceof Error ? error.message : String(error);
  return new GithubRefusal(status, details.length ? `${base}: ${details.join("; ")}` : base);
}

function split(repository: string): { owner: string; repo: string } {
  const [owner, repo] = repository.split("/") as [string, string];
  return { owner, repo };
}

export async function createHook(apiUrl: string, token: string, repository: string, hook: { url: string; secret: string; events: string[] }): Promise<GithubHook> {
  try {
    const response = await client(apiUrl, token).request("POST /repos/{owner}/{repo}/hooks", {
      ...split(repository),
      name: "web",
      active: true,
      events: hook.events,
      config: { url: hook.url, content_type: "json", secret: hook.secret, insecure_ssl: "0" },
    });
    return response.data as GithubHook;
  } catch (error) {
    throw refusal(error);
  }
}

/** Deletes a hook; one GitHub no longer has (404) counts as deleted. */
export async function deleteHook(apiUrl: string, token: string, repository: string, hookId: number): Promise<void> {
  try {
    await client(apiUrl, token).request("DELETE /repos/{owner}/{repo}/hooks/{hook_id}", { ...split(repository), hook_id: hookId });
  } catch (error) {
    const failed = refusal(error);
    if (failed.status !== 404) throw failed;
  }
}

/** The repository's hooks (first 100: Stasis looks for its own by URL). */
export async function listHooks(apiUrl: string, token: string, repository: string): Promise<GithubHook[]> {
  try {
    const response = await client(apiUrl, token).request("GET /repos/{owner}/{repo}/hooks", { ...split(repository), per_page: 100 });
    return response.data as GithubHook[];
  } catch (error) {
    throw refusal(error);
  }
}
