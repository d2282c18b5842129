// Stands in for GitHub's repository webhooks REST API (api.github.com is on the public internet, which
// tests cannot reach): a local HTTP server with GitHub's routes and response shapes for
// `POST/GET /repos/{owner}/{repo}/hooks` and `DELETE /repos/{owner}/{repo}/hooks/{hook_id}`. A Bearer
// token is checked against the local OpenID Provider that issued it (its userinfo endpoint): an
// unknown, expired or revoked token gets GitHub's 401 "Bad credentials"; a repository the token's
// account does not administer gets GitHub's 404. It also delivers events to a hook's URL as GitHub
// does: the JSON body signed with the hook's secret in X-Hub-Signature-256.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhooks } from "@octokit/webhooks";

export interface StandInHook {
  id: number;
  repository: string;
  events: string[];
  active: boolean;
  config: { url: string; content_type: string; secret: string; insecure_ssl: string };
  created_at: string;
}

export interface GithubHooksStandIn {
  url: string;
  hooks: StandInHook[];
  calls: Array<{ method: string; path: string; status: number }>;
  /** Knobs: delay each create (a race), or create the hook and then answer 502 (a lost answer). */
  faults: { createDelayMs: number; createThen502: boolean };
  /** Delivers an event to a hook's URL, signed with the hook's secret (or `secret` given), as GitHub does. */
  deliver(hook: StandInHook, name: string, payload: unknown, options?: { secret?: string; deliveryId?: string }): Promise<{ status: number; body: any; deliveryId: string }>;
  close(): Promise<void>;
}

/** GitHub limits each event to 20 hooks per repository ("Validation Failed"). */
const MAX_HOOKS_PER_EVENT = 20;

export async function startGithubHooksStandIn(options: { issuer: string; repositories: Record<string, string[]> }): Promise<GithubHooksStandIn> {
  const state: Pick<GithubHooksStandIn, "hooks" | "calls" | "faults"> = { hooks: [], calls: [], faults: { createDelayMs: 0, createThen502: false } };
  let nextId = 400_000_000;
  let url = "";

  /** The account a token belongs to, per the provider that issued it (null: GitHub's 401). */
  const accountOf = async (authorization: string | undefined): Promise<string | null> => {
    const token = (authorization ?? "").replace(/^(bearer|token) /i, "");
    if (!token) return null;
    const answer = await fetch(`${options.issuer}/me`, { headers: { authorization: `Bearer ${token}` } });
    if (!answer.ok) return null;
    return ((await answer.json()) as { sub: string }).sub;
  };

  const view = (hook: StandInHook) => ({
    type: "Repository",
    id: hook.id,
    name: "web",
    active: hook.active,
    events: hook.events,
    // GitHub never returns a hook's secret.
    config: { content_type: hook.config.content_type, insecure_ssl: hook.config.insecure_ssl, url: hook.config.url, secret: "********" },
    updated_at: hook.created_at,
    created_at: hook.created_at,
    url: `${url}/repos/${hook.repository}/hooks/${hook.id}`,
    test_url: `${url}/repos/${hook.repository}/hooks/${hook.id}/test`,
    ping_url: `${url}/repos/${hook.repository}/hooks/${hook.id}/pings`,
    deliveries_url: `${url}/repos/${hook.repository}/hooks/${hook.id}/deliveries`,
    last_response: { code: null, status: "unused", message: null },
  });

  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    const path = new URL(request.url ?? "/", "http://x").pathname;
    const send = (status: number, value?: unknown) => {
      state.calls.push({ method: request.method ?? "GET", path, status });
      if (status === 204) return void response.writeHead(204).end();
      response.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(value));
    };
    const notFound = () => send(404, { message: "Not Found", documentation_url: "https://docs.github.com/rest", status: "404" });
    const match = /^\/repos\/([^/]+)\/([^/]+)\/hooks(?:\/(\d+))?$/.exec(path);
    if (!match) return notFound();
    const account = await accountOf(request.headers.authorization);
    if (!account) return send(401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest", status: "401" });
    const repository = `${match[1]}/${match[2]}`;
    if (!(options.repositories[repository] ?? []).includes(account)) return notFound();
    const hookId = match[3] ? Number(match[3]) : null;

    if (request.method === "GET" && hookId === null) return send(200, state.hooks.filter((h) => h.repository === repository).map(view));
    if (request.method === "DELETE" && hookId !== null) {
      const index = state.hooks.findIndex((h) => h.repository === repository && h.id === hookId);
      if (index < 0) return notFound();
      state.hooks.splice(index, 1);
      return send(204);
    }
    if (request.method === "POST" && hookId === null) {
      const body = JSON.parse(text || "{}") as { name?: string; events?: string[]; active?: boolean; config?: Record<string, string> };
      if (!body.config?.url) return send(422, { message: "Validation Failed", errors: [{ resource: "Hook", code: "custom", message: "Config must contain URL for webhooks" }], status: "422" });
      const events = body.events ?? ["push"];
      const existing = state.hooks.filter((h) => h.repository === repository);
      if (existing.some((h) => h.config.url === body.config!.url)) return send(422, { message: "Validation Failed", errors: [{ resource: "Hook", code: "custom", message: "Hook already exists on this repository" }], status: "422" });
      for (const event of events) {
        if (existing.filter((h) => h.events.includes(event)).length >= MAX_HOOKS_PER_EVENT) {
          return send(422, { message: "Validation Failed", errors: [{ resource: "Hook", code: "custom", message: `The "${event}" event cannot have more than ${MAX_HOOKS_PER_EVENT} hooks` }], status: "422" });
        }
      }
      if (state.faults.createDelayMs) await new Promise((resolve) => setTimeout(resolve, state.faults.createDelayMs));
      const hook: StandInHook = {
        id: nextId++,
        repository,
        events,
        active: body.active ?? true,
        config: { url: body.config.url, content_type: body.config.content_type ?? "form", secret: body.config.secret ?? "", insecure_ssl: body.config.insecure_ssl ?? "0" },
        created_at: new Date().toISOString(),
      };
      state.hooks.push(hook);
      if (state.faults.createThen502) {
        state.faults.createThen502 = false;
        return send(502, { message: "Server Error" });
      }
      return send(201, view(hook));
    }
    return notFound();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    ...state,
    async deliver(hook, name, payload, o = {}) {
      const body = JSON.stringify(payload);
      const deliveryId = o.deliveryId ?? randomUUID();
      const signature = await new Webhooks({ secret: o.secret ?? hook.config.secret }).sign(body);
      const answer = await fetch(hook.config.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "GitHub-Hookshot/stand-in",
          "x-github-event": name,
          "x-github-delivery": deliveryId,
          "x-github-hook-id": String(hook.id),
          "x-github-hook-installation-target-type": "repository",
          "x-hub-signature-256": signature,
        },
        body,
      });
      return { status: answer.status, body: await answer.json(), deliveryId };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
