import type { ConnectLinkResponse, ConnectionView, TokenResponse } from "../schemas/index.ts";
import { apiRequest } from "./api-client.ts";
import { getRunRuntime } from "./run-runtime.ts";

export type ConnectionToken = TokenResponse;

/**
 * OAuth connections Stasis keeps and refreshes. Inside a task, calls go through the runner (scoped to
 * the run's environment, no API key in the task); in app code, through the configured API key.
 */
export const connections = {
  /**
   * A fresh access token of the integration's team connection, or of one of the app's users with
   * `{ externalId }`. Throws (code CONNECTION_BROKEN) when the provider refused its refresh token:
   * the account has to connect again.
   */
  async getToken(integration: string, options: { externalId?: string } = {}): Promise<ConnectionToken> {
    const body = { integration, ...(options.externalId !== undefined ? { externalId: options.externalId } : {}) };
    const runtime = getRunRuntime();
    if (runtime) return (await runtime.call({ method: "getConnectionToken", ...body })) as ConnectionToken;
    return await apiRequest<ConnectionToken>("POST", "/api/v1/connections/token", body);
  },
  /** A one-time, expiring link that lets one of the app's users connect their account; they land on `redirectTo` afterwards. */
  async createConnectLink(options: { integration: string; externalId: string; redirectTo: string; expiresInSeconds?: number }): Promise<ConnectLinkResponse> {
    return await apiRequest<ConnectLinkResponse>("POST", "/api/v1/connect-links", options);
  },
  /** The environment's connections (no tokens). */
  async list(options: { integration?: string } = {}): Promise<ConnectionView[]> {
    const query = options.integration ? `?integration=${encodeURIComponent(options.integration)}` : "";
    return (await apiRequest<{ data: ConnectionView[] }>("GET", `/api/v1/connections${query}`)).data;
  },
};
