import { ApiErrorBody } from "../schemas/index.ts";

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

/** One JSON call to the Stasis API with a bearer token (an API key, a deploy token or the admin token). */
export async function callStasisApi<T>(apiUrl: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${apiUrl.replace(/\/+$/, "")}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
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
