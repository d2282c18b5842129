// The dashboard's one door to the server: the same HTTP API as the CLI, with the session cookie,
// its CSRF token on every state-changing request, and (for the admin) the environment it acts in.

export interface Session {
  kind: "admin" | "env";
  project: string | null;
  environment: string | null;
  csrfToken: string;
  expiresAt: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken = "";
/** `<project>/<environment>` the admin acts in; an environment session ignores it (the server does too). */
let actingIn = "";
let onSignedOut: (error: ApiError) => void = () => {};

export function setSessionContext(session: Session | null, environment: string, signedOut: (error: ApiError) => void): void {
  csrfToken = session?.csrfToken ?? "";
  actingIn = environment;
  onSignedOut = signedOut;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["x-csrf-token"] = csrfToken;
  if (actingIn) headers["x-stasis-environment"] = actingIn;
  const response = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null as T;
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(response.status, "BAD_RESPONSE", `the server answered ${response.status} with something that is not JSON`);
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    const failure = new ApiError(response.status, error?.code ?? String(response.status), error?.message ?? `request failed with ${response.status}`);
    if (response.status === 401 && !path.startsWith("/api/v1/dashboard/")) onSignedOut(failure);
    throw failure;
  }
  return parsed as T;
}

/**
 * The live stream of this environment's run changes, or of every environment's for the admin's
 * all-environments list (Server-Sent Events; the browser reconnects by itself).
 */
export function streamRuns(onChange: (change: { id: string; what: string } | null) => void, runId?: string, allEnvironments = false): () => void {
  const query = new URLSearchParams();
  if (runId) query.set("run", runId);
  if (actingIn && !allEnvironments) query.set("environment", actingIn);
  const source = new EventSource(allEnvironments ? "/api/v1/admin/stream/runs" : `/api/v1/stream/runs?${query}`);
  source.addEventListener("run", (event) => onChange(JSON.parse((event as MessageEvent).data)));
  source.addEventListener("resync", () => onChange(null));
  // After a reconnect, whatever changed while the stream was down: re-read.
  source.addEventListener("open", () => onChange(null));
  return () => source.close();
}
