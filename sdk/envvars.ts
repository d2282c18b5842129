import type { EnvVarListResponse, EnvVarView } from "../schemas/index.ts";
import { apiRequest } from "./api-client.ts";

const base = "/api/v1/envvars";
const named = (name: string) => `${base}/${encodeURIComponent(name)}`;

/**
 * The environment variables of the configured API key's environment (app code and scripts; the
 * key decides the environment, and cannot reach another's). Task code reads its variables from
 * `process.env`: the runner puts them there.
 */
export const envvars = {
  /** Names, sources and update times; values only with `{ reveal: true }`. */
  async list(options: { reveal?: boolean } = {}): Promise<EnvVarView[]> {
    const response = await apiRequest<EnvVarListResponse>("GET", `${base}${options.reveal ? "?reveal=true" : ""}`);
    return response.data;
  },
  /** The value, or undefined when the variable is not set (here or, for a preview, in the `preview` set). */
  async get(name: string): Promise<string | undefined> {
    try {
      return (await apiRequest<EnvVarView>("GET", named(name))).value;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return undefined;
      throw error;
    }
  },
  /** `set("KEY", "value")` or `set({ KEY: "value", … })`: all or nothing. */
  async set(nameOrVariables: string | Record<string, string>, value?: string): Promise<string[]> {
    const variables = typeof nameOrVariables === "string" ? { [nameOrVariables]: value ?? "" } : nameOrVariables;
    return (await apiRequest<{ set: string[] }>("POST", base, { variables })).set;
  },
  /** True when the environment had the variable (an inherited `preview` value stays). */
  async delete(name: string): Promise<boolean> {
    return (await apiRequest<{ deleted: boolean }>("DELETE", named(name))).deleted;
  },
};
