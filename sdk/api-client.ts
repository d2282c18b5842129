import { StasisApiError } from "./errors.ts";

export interface ClientConfig {
  apiUrl: string;
  apiKey: string;
}

let configured: Partial<ClientConfig> = {};

/** Point app code at a Stasis server. Defaults: `STASIS_API_URL`, `STASIS_API_KEY`. */
export function configure(config: Partial<ClientConfig>): void {
  configured = { ...configured, ...config };
}

function resolveConfig(): ClientConfig {
  const apiUrl = configured.apiUrl ?? process.env.STASIS_API_URL;
  const apiKey = configured.apiKey ?? process.env.STASIS_API_KEY;
  if (!apiUrl) throw new Error("Stasis API URL is not set: call configure({ apiUrl }) or set STASIS_API_URL");
  if (!apiKey) throw new Error("Stasis API key is not set: call configure({ apiKey }) or set STASIS_API_KEY");
  return { apiUrl: apiUrl.replace(/\/+$/, ""), apiKey };
}

/** One JSON request to the public API; a non-2xx answer becomes a StasisApiError with the server's message. */
export async function apiRequest<T>(method: string, path: string, body?: unknown): Promise<T> {
  const { apiUrl, apiKey } = resolveConfig();
  const response = await fetch(`${apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? safeJson(text) : undefined;
  if (!response.ok) {
    // Loaded on an error only: a task process builds no zod schema unless it needs one (ipc-channel.ts).
    const { ApiErrorBody } = await import("../schemas/common.ts");
    const parsed = ApiErrorBody.safeParse(json);
    if (parsed.success) throw new StasisApiError(response.status, parsed.data.error.code, parsed.data.error.message);
    throw new StasisApiError(response.status, "HTTP_ERROR", `${method} ${path} failed with HTTP ${response.status}`);
  }
  return json as T;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
