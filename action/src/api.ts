import { ApiErrorBody } from "../../schemas/index.ts";

/** A non-2xx answer of the Stasis API, with the server's code and message. */
export class StasisApiError extends Error {
  override name = "StasisApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** One JSON call to the Stasis API. `token` may be absent for the OIDC exchange. */
export async function callApi<T>(apiUrl: string, token: string | null, method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${apiUrl}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new Error(`cannot reach the Stasis server at ${apiUrl} (${cause}): check the api-url input`);
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
    throw new StasisApiError(response.status, parsed.success ? parsed.data.error.code : "HTTP_ERROR", parsed.success ? parsed.data.error.message : `${method} ${path}: HTTP ${response.status}`);
  }
  return json as T;
}
