import { setTimeout as sleep } from "node:timers/promises";
import { BuilderError, toError } from "./errors.ts";

export type RegistryAuth = { username: string; password: string } | { token: string };

export interface RegistryClientOptions {
  /** `http://127.0.0.1:5000` or `https://ghcr.io`. */
  url: string;
  auth?: RegistryAuth;
  /** Attempts per request on network errors, 429 and 5xx (default 5), with exponential backoff. */
  attempts?: number;
  /** First backoff delay in ms (default 200), doubled each attempt, capped at 5 s. */
  backoffMs?: number;
  /**
   * Token-service hosts (a Bearer challenge's `realm`) other than the registry's own that may get
   * the credentials; default STASIS_REGISTRY_TOKEN_REALMS (comma-separated hosts). Any other realm
   * is asked for an anonymous token.
   */
  realmHosts?: string[];
}

export interface RegistryRequest {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** A path under the registry (`/v2/…`) or an absolute upload Location. */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

export interface RegistryClient {
  readonly host: string;
  /** The registry's base URL (`http://127.0.0.1:5000`). */
  readonly url: string;
  request(req: RegistryRequest): Promise<Response>;
  /** Throws a REGISTRY_ERROR naming the call unless the status is one of `ok`. */
  expect(res: Response, ok: number[], what: string): Promise<Response>;
}

function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(" ");
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) params[m[1]!.toLowerCase()] = m[2]!;
  return { scheme, params };
}

function basic(username: string, password: string): string {
  return "Basic " + Buffer.from(`${username}:${password}`).toString("base64");
}

/**
 * A small OCI Distribution HTTP client: answers Basic and Bearer (token-service) challenges from
 * `WWW-Authenticate`, retries network errors, 429 and 5xx with backoff. Credentials never appear in errors.
 */
export function createRegistryClient(o: RegistryClientOptions): RegistryClient {
  const base = new URL(o.url);
  const attempts = o.attempts ?? 5;
  const backoffMs = o.backoffMs ?? 200;
  let authorization: string | undefined = o.auth && "token" in o.auth ? `Bearer ${o.auth.token}` : undefined;
  const realmHosts = new Set((o.realmHosts ?? (process.env.STASIS_REGISTRY_TOKEN_REALMS ?? "").split(",")).map((h) => h.trim().toLowerCase()).filter(Boolean));
  /** Credentials go to the registry itself, or a configured token service, never over a downgrade to http. */
  const mayGetCredentials = (url: URL) => (url.host === base.host || realmHosts.has(url.host.toLowerCase())) && (url.protocol === "https:" || base.protocol === "http:");

  async function answerChallenge(header: string | null): Promise<boolean> {
    if (!header || !o.auth) return false;
    const { scheme, params } = parseChallenge(header);
    if (scheme === "basic" && "username" in o.auth) {
      authorization = basic(o.auth.username, o.auth.password);
      return true;
    }
    if (scheme !== "bearer" || !params.realm) return false;
    const tokenUrl = new URL(params.realm);
    if (params.service) tokenUrl.searchParams.set("service", params.service);
    if (params.scope) tokenUrl.searchParams.set("scope", params.scope);
    const headers: Record<string, string> = {};
    if (mayGetCredentials(tokenUrl)) headers.authorization = "username" in o.auth ? basic(o.auth.username, o.auth.password) : basic("token", o.auth.token);
    const res = await fetch(tokenUrl, { headers, redirect: "error" });
    if (!res.ok) throw new BuilderError("REGISTRY_AUTH", `token service ${tokenUrl.origin} refused the credentials (${res.status})`);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new BuilderError("REGISTRY_AUTH", `token service ${tokenUrl.origin} answered without a token`);
    authorization = `Bearer ${token}`;
    return true;
  }

  /**
   * Follows redirects itself (blob downloads go to storage elsewhere): the Authorization header is
   * sent to the registry's own host only, never carried to a redirect's.
   */
  async function fetchFollowing(first: URL, req: RegistryRequest, auth: string | undefined): Promise<Response> {
    let url = first;
    for (let hops = 0; ; hops++) {
      const headers: Record<string, string> = { ...req.headers };
      if (auth && url.host === base.host && (url.protocol === base.protocol)) headers.authorization = auth;
      const res = await fetch(url, { method: req.method, headers, body: req.body as RequestInit["body"], redirect: "manual" });
      const location = res.headers.get("location");
      if (![301, 302, 303, 307, 308].includes(res.status) || !location || req.method === "POST" || req.method === "PATCH" || req.method === "PUT") return res;
      if (hops >= 5) throw new BuilderError("REGISTRY_ERROR", `${req.method} ${first.origin}${first.pathname}: too many redirects`);
      await res.body?.cancel();
      url = new URL(location, url);
    }
  }

  async function request(req: RegistryRequest): Promise<Response> {
    const url = new URL(req.path, base);
    let challenges = 0;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetchFollowing(url, req, authorization);
      } catch (err) {
        if (attempt >= attempts) throw new BuilderError("REGISTRY_ERROR", `${req.method} ${url.origin}${url.pathname} failed: ${toError(err).message}`, { cause: err });
        await sleep(Math.min(backoffMs * 2 ** (attempt - 1), 5000));
        continue;
      }
      if (res.status === 401) {
        await res.body?.cancel();
        // A second 401 after Basic credentials, or a third after tokens (a new scope may earn one retry), is a refusal.
        if (challenges >= 2 || (challenges >= 1 && authorization?.startsWith("Basic "))) {
          throw new BuilderError("REGISTRY_AUTH", `${url.host} refused the credentials`);
        }
        challenges++;
        attempt--;
        if (await answerChallenge(res.headers.get("www-authenticate"))) continue;
        throw new BuilderError("REGISTRY_AUTH", `${url.host} requires authentication${o.auth ? " and refused the credentials" : " and none were given (registry credentials go only to STASIS_REGISTRY_AUTH_HOST, else the host of STASIS_REGISTRY)"}`);
      }
      if ((res.status === 429 || res.status >= 500) && attempt < attempts) {
        await res.body?.cancel();
        await sleep(Math.min(backoffMs * 2 ** (attempt - 1), 5000));
        continue;
      }
      return res;
    }
  }

  async function expect(res: Response, ok: number[], what: string): Promise<Response> {
    if (ok.includes(res.status)) return res;
    const text = (await res.text().catch(() => "")).slice(0, 300);
    if (res.status === 401 || res.status === 403) throw new BuilderError("REGISTRY_AUTH", `${what}: ${res.status} ${text}`);
    throw new BuilderError("REGISTRY_ERROR", `${what}: unexpected ${res.status} ${text}`);
  }

  return { host: base.host, url: base.origin, request, expect };
}
