import { ApiErrorBody } from "../schemas/index.ts";

/** A non-2xx answer of the Stasis API, with the server's code and message. */
export class StasisApiCallError extends Error {
  override name = "StasisApiCallError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * One JSON call to the Stasis API with a bearer token (an API key, a deploy token or the admin
 * token; none for the OIDC exchange). An unreachable server is an error that names the URL.
 */
export async function callStasisApi<T>(apiUrl: string, token: string | null, method: string, path: string, body?: unknown): Promise<T> {
  const base = apiUrl.replace(/\/+$/, "");
  const timeoutMs = apiTimeoutMs();
  const signal = AbortSignal.timeout(timeoutMs);
  let response: Response;
  let text: string;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    text = await response.text();
  } catch (error) {
    if (signal.aborted) throw new Error(`the Stasis server at ${base} did not answer ${method} ${path} within ${timeoutMs / 1000} s (STASIS_API_TIMEOUT_MS)`, { cause: error });
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new Error(`cannot reach the Stasis server at ${base} (${cause})`, { cause: error });
  }
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const parsed = ApiErrorBody.safeParse(json);
    const message = parsed.success ? parsed.data.error.message : `${method} ${path}: HTTP ${response.status}`;
    throw new StasisApiCallError(response.status, parsed.success ? parsed.data.error.code : "HTTP_ERROR", message);
  }
  return json as T;
}

/** How long one API call may take: STASIS_API_TIMEOUT_MS, default 60 s (Node's own default is 300 s per call). */
function apiTimeoutMs(): number {
  const value = Number(process.env.STASIS_API_TIMEOUT_MS);
  return Number.isFinite(value) && value > 0 ? value : 60_000;
}
