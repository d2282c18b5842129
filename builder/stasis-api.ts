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
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new Error(`cannot reach the Stasis server at ${base} (${cause})`, { cause: error });
  }
  const text = await response.text();
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
