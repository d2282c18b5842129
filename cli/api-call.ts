import { ApiErrorBody } from "../schemas/index.ts";
import { StasisApiError } from "../sdk/index.ts";

/** A JSON call to the Stasis API with a bearer token (API key or admin token). */
export async function apiCall<T>(apiUrl: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${apiUrl.replace(/\/+$/, "")}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!response.ok) {
    const parsed = ApiErrorBody.safeParse(json);
    throw new StasisApiError(response.status, parsed.success ? parsed.data.error.code : "HTTP_ERROR", parsed.success ? parsed.data.error.message : `${method} ${path}: HTTP ${response.status}`);
  }
  return json as T;
}
