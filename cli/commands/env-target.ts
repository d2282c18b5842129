import { callStasisApi } from "../../builder/index.ts";
import type { EnvVarListResponse } from "../../schemas/index.ts";
import { resolveAdminTarget, resolveApiTarget } from "../api-target.ts";
import { CliError, ExitCode } from "../output.ts";

export interface EnvVarTarget {
  apiUrl: string;
  token: string;
  /** `/api/v1/envvars` (the key's own environment) or the admin path of another one. */
  path: string;
  describe: string;
}

/** STASIS_ADMIN_TOKEN, else the running `stasis dev`'s; null when neither is there. */
function adminToken(): string | null {
  if (process.env.STASIS_ADMIN_TOKEN) return process.env.STASIS_ADMIN_TOKEN;
  try {
    return resolveAdminTarget().adminToken;
  } catch (error) {
    if (error instanceof CliError) return null;
    throw error;
  }
}

/**
 * Without `--env`: the API key's own environment. With `--env` naming another environment (or
 * `preview`, the set previews inherit): the admin token, since a key never reaches past its own.
 */
export async function resolveEnvVarTarget(options: { env?: string; project?: string }): Promise<EnvVarTarget> {
  const adminOnly = options.env && options.project && process.env.STASIS_API_URL && !process.env.STASIS_API_KEY;
  let apiUrl: string;
  let project = options.project;
  if (!adminOnly) {
    const target = resolveApiTarget();
    apiUrl = target.apiUrl;
    const own = await callStasisApi<EnvVarListResponse>(apiUrl, target.apiKey, "GET", "/api/v1/envvars");
    if (!options.env || options.env === own.environment) return { apiUrl, token: target.apiKey, path: "/api/v1/envvars", describe: `${own.project}/${own.environment}` };
    project ??= own.project;
  } else {
    apiUrl = process.env.STASIS_API_URL!;
  }
  const token = adminToken();
  if (!token) {
    throw new CliError(`--env ${options.env} is another environment than the API key's: it needs the admin token (set STASIS_ADMIN_TOKEN), or an API key of ${options.env}`, ExitCode.USAGE);
  }
  return {
    apiUrl,
    token,
    path: `/api/v1/admin/projects/${encodeURIComponent(project!)}/environments/${encodeURIComponent(options.env!)}/envvars`,
    describe: `${project}/${options.env}`,
  };
}
