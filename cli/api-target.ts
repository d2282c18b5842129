import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { configure } from "../sdk/index.ts";
import { CliError, ExitCode } from "./output.ts";

/** What `stasis dev` leaves in `<project>/.stasis/dev.json` so other commands find it. */
export const DevState = z.object({
  apiUrl: z.string(),
  apiKey: z.string(),
  environment: z.string(),
  adminToken: z.string(),
  runnerToken: z.string(),
  port: z.number().int(),
  pid: z.number().int().optional(),
});
export type DevState = z.infer<typeof DevState>;

export function findDevStateFile(from = process.cwd()): string | null {
  let dir = resolve(from);
  for (;;) {
    const candidate = join(dir, ".stasis", "dev.json");
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/**
 * A credential from the environment (STASIS_API_URL and `variable`), else from the running
 * `stasis dev` of this project (`.stasis/dev.json`).
 */
function resolveTarget(variable: "STASIS_API_KEY" | "STASIS_ADMIN_TOKEN", what: string, fromDev: (state: DevState) => string): { apiUrl: string; token: string } {
  const fromEnv = process.env[variable];
  if (process.env.STASIS_API_URL && fromEnv) return { apiUrl: process.env.STASIS_API_URL, token: fromEnv };
  const file = findDevStateFile();
  if (!file) throw new CliError(`no Stasis ${what} configured: set STASIS_API_URL and ${variable}, or run \`stasis dev\` in this project`, ExitCode.USAGE);
  const state = DevState.parse(JSON.parse(readFileSync(file, "utf8")));
  if (state.pid && !isAlive(state.pid)) throw new CliError(`\`stasis dev\` of this project (${file}) is not running; start it, or set STASIS_API_URL and ${variable}`, ExitCode.UNREACHABLE);
  return { apiUrl: process.env.STASIS_API_URL ?? state.apiUrl, token: fromEnv ?? fromDev(state) };
}

/** The API to talk to: STASIS_API_URL/STASIS_API_KEY, else the running `stasis dev` of this project. */
export function resolveApiTarget(): { apiUrl: string; apiKey: string } {
  const { apiUrl, token } = resolveTarget("STASIS_API_KEY", "API", (state) => state.apiKey);
  return { apiUrl, apiKey: token };
}

/** The API as an admin: STASIS_API_URL/STASIS_ADMIN_TOKEN (the server's admin token), else the running `stasis dev` of this project. */
export function resolveAdminTarget(): { apiUrl: string; adminToken: string } {
  const { apiUrl, token } = resolveTarget("STASIS_ADMIN_TOKEN", "admin access", (state) => state.adminToken);
  return { apiUrl, adminToken: token };
}

export function configureSdkFromTarget(): { apiUrl: string; apiKey: string } {
  const target = resolveApiTarget();
  configure(target);
  return target;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
