// Stands in for the public GitHub REST API (api.github.com), which tests cannot reach: a local HTTP
// server answering the routes the Stasis GitHub App calls, with GitHub's response shapes, that
// checks the App JWT (signed with the App's private key) and the installation tokens it issued,
// and records every call for assertions.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { importSPKI, jwtVerify } from "jose";

export interface RecordedCall {
  method: string;
  path: string;
  body: any;
}

export interface CheckRun {
  id: number;
  name: string;
  head_sha: string;
  status: string;
  conclusion: string | null;
  output: { title?: string; summary?: string; text?: string };
}

export interface Deployment {
  id: number;
  ref: string;
  environment: string;
  statuses: Array<{ state: string; description: string }>;
}

export interface Comment {
  id: number;
  issue: number;
  body: string;
  /** How many times the comment was edited after it was created. */
  edits: number;
}

export interface GithubStandIn {
  url: string;
  calls: RecordedCall[];
  checkRuns: CheckRun[];
  deployments: Deployment[];
  comments: Comment[];
  /** Whether `token` is a live installation token this stand-in issued (the git server asks). */
  isInstallationToken(token: string): boolean;
  close(): Promise<void>;
}

export async function startGithubStandIn(options: { appId: string; publicKeyPem: string; tokenTtlMs?: number }): Promise<GithubStandIn> {
  const publicKey = await importSPKI(options.publicKeyPem, "RS256");
  const tokens = new Map<string, number>();
  const state = { calls: [] as RecordedCall[], checkRuns: [] as CheckRun[], deployments: [] as Deployment[], comments: [] as Comment[] };
  let nextId = 1000;
  let url = "";

  const routes: Array<[string, RegExp, (m: string[], body: any, query: URLSearchParams) => [number, unknown]]> = [
    ["POST", /^\/app\/installations\/(\d+)\/access_tokens$/, () => {
      const token = `ghs_${randomBytes(18).toString("hex")}`;
      const expiresAt = Date.now() + (options.tokenTtlMs ?? 3600_000);
      tokens.set(token, expiresAt);
      return [201, { token, expires_at: new Date(expiresAt).toISOString().replace(/\.\d+Z$/, "Z"), permissions: { checks: "write", contents: "read", deployments: "write", pull_requests: "write", metadata: "read" }, repository_selection: "selected" }];
    }],
    ["POST", /^\/repos\/([^/]+)\/([^/]+)\/check-runs$/, (m, body) => {
      const run: CheckRun = { id: nextId++, name: body.name, head_sha: body.head_sha, status: body.status ?? "queued", conclusion: body.conclusion ?? null, output: body.output ?? {} };
      state.checkRuns.push(run);
      return [201, { ...run, node_id: `CR_${run.id}`, url: `${url}/repos/${m[1]}/${m[2]}/check-runs/${run.id}`, html_url: `https://github.com/${m[1]}/${m[2]}/runs/${run.id}` }];
    }],
    ["PATCH", /^\/repos\/([^/]+)\/([^/]+)\/check-runs\/(\d+)$/, (m, body) => {
      const run = state.checkRuns.find((r) => r.id === Number(m[3]));
      if (!run) return [404, { message: "Not Found" }];
      Object.assign(run, { status: body.status ?? run.status, conclusion: body.conclusion ?? run.conclusion, output: body.output ?? run.output });
      return [200, { ...run, node_id: `CR_${run.id}` }];
    }],
    ["POST", /^\/repos\/([^/]+)\/([^/]+)\/deployments$/, (m, body) => {
      const deployment: Deployment = { id: nextId++, ref: body.ref, environment: body.environment, statuses: [] };
      state.deployments.push(deployment);
      return [201, { id: deployment.id, node_id: `DE_${deployment.id}`, sha: body.ref, ref: body.ref, environment: body.environment, task: "deploy", payload: {}, url: `${url}/repos/${m[1]}/${m[2]}/deployments/${deployment.id}`, created_at: new Date().toISOString() }];
    }],
    // GitHub lists deployments newest first, filtered by `environment`, `sha`, `ref`.
    ["GET", /^\/repos\/([^/]+)\/([^/]+)\/deployments$/, (m, _body, query) => {
      const environment = query.get("environment");
      const sha = query.get("sha");
      const found = state.deployments.filter((d) => (!environment || d.environment === environment) && (!sha || d.ref === sha)).reverse();
      return [200, found.slice(0, Number(query.get("per_page") ?? 30)).map((d) => ({ id: d.id, node_id: `DE_${d.id}`, sha: d.ref, ref: d.ref, environment: d.environment, task: "deploy", payload: {}, url: `${url}/repos/${m[1]}/${m[2]}/deployments/${d.id}`, statuses_url: `${url}/repos/${m[1]}/${m[2]}/deployments/${d.id}/statuses`, created_at: new Date().toISOString() }))];
    }],
    ["POST", /^\/repos\/([^/]+)\/([^/]+)\/deployments\/(\d+)\/statuses$/, (m, body) => {
      const deployment = state.deployments.find((d) => d.id === Number(m[3]));
      if (!deployment) return [404, { message: "Not Found" }];
      deployment.statuses.push({ state: body.state, description: body.description ?? "" });
      return [201, { id: nextId++, state: body.state, description: body.description ?? "", environment: body.environment ?? deployment.environment, created_at: new Date().toISOString() }];
    }],
    ["GET", /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/, (m) => [200, state.comments.filter((c) => c.issue === Number(m[3])).map((c) => ({ id: c.id, body: c.body, user: { login: "stasis[bot]", type: "Bot" } }))]],
    ["POST", /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/, (m, body) => {
      const comment: Comment = { id: nextId++, issue: Number(m[3]), body: body.body, edits: 0 };
      state.comments.push(comment);
      return [201, { id: comment.id, body: comment.body, user: { login: "stasis[bot]", type: "Bot" } }];
    }],
    ["PATCH", /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/, (m, body) => {
      const comment = state.comments.find((c) => c.id === Number(m[3]));
      if (!comment) return [404, { message: "Not Found" }];
      Object.assign(comment, { body: body.body, edits: comment.edits + 1 });
      return [200, { id: comment.id, body: comment.body }];
    }],
  ];

  const authorized = async (request: IncomingMessage, path: string): Promise<boolean> => {
    const header = request.headers.authorization ?? "";
    if (path.startsWith("/app/")) {
      const jwt = header.replace(/^bearer /i, "");
      const verified = await jwtVerify(jwt, publicKey, { algorithms: ["RS256"] }).catch(() => null);
      return verified !== null && String(verified.payload.iss) === options.appId;
    }
    const token = header.replace(/^(token|bearer) /i, "");
    return (tokens.get(token) ?? 0) > Date.now();
  };

  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    const requestUrl = new URL(request.url ?? "/", "http://x");
    const path = requestUrl.pathname;
    const body = text ? JSON.parse(text) : null;
    state.calls.push({ method: request.method ?? "GET", path, body });
    const send = (status: number, value: unknown) => response.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(value));
    const route = routes.find(([method, pattern]) => method === request.method && pattern.test(path));
    if (!route) return send(404, { message: "Not Found", documentation_url: "https://docs.github.com/rest" });
    if (!(await authorized(request, path))) return send(401, { message: "Bad credentials", documentation_url: "https://docs.github.com/rest" });
    const [status, value] = route[2](route[1].exec(path)!, body, requestUrl.searchParams);
    send(status, value);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    ...state,
    isInstallationToken: (token) => (tokens.get(token) ?? 0) > Date.now(),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
