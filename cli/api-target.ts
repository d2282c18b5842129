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

/** The API to talk to: STASIS_API_URL/STASIS_API_KEY, else the running `stasis dev` of this project. */
export function resolveApiTarget(): { apiUrl: string; apiKey: string } {
  if (process.env.STASIS_API_URL && process.env.STASIS_API_KEY) return { apiUrl: process.env.STASIS_API_URL, apiKey: process.env.STASIS_API_KEY };
  const file = findDevStateFile();
  if (!file) throw new CliError("no Stasis API configured: set STASIS_API_URL and STASIS_API_KEY, or run `stasis dev` in this project", ExitCode.USAGE);
  const state = DevState.parse(JSON.parse(readFileSync(file, "utf8")));
  if (state.pid && !isAlive(state.pid)) throw new CliError(`\`stasis dev\` of this project (${file}) is not running; start it, or set STASIS_API_URL and STASIS_API_KEY`, ExitCode.UNREACHABLE);
  return { apiUrl: process.env.STASIS_API_URL ?? state.apiUrl, apiKey: process.env.STASIS_API_KEY ?? state.apiKey };
}

/** The API as an admin: STASIS_API_URL/STASIS_ADMIN_TOKEN, else the running `stasis dev` of this project. */
export function resolveAdminTarget(): { apiUrl: string; adminToken: string } {
  if (process.env.STASIS_API_URL && process.env.STASIS_ADMIN_TOKEN) return { apiUrl: process.env.STASIS_API_URL, adminToken: process.env.STASIS_ADMIN_TOKEN };
  const file = findDevStateFile();
  if (!file) throw new CliError("no Stasis admin access configured: set STASIS_API_URL and STASIS_ADMIN_TOKEN (the server's admin token), or run `stasis dev` in this project", ExitCode.USAGE);
  const state = DevState.parse(JSON.parse(readFileSync(file, "utf8")));
  if (state.pid && !isAlive(state.pid)) throw new CliError(`\`stasis dev\` of this project (${file}) is not running; start it, or set STASIS_API_URL and STASIS_ADMIN_TOKEN`, ExitCode.UNREACHABLE);
  return { apiUrl: process.env.STASIS_API_URL ?? state.apiUrl, adminToken: process.env.STASIS_ADMIN_TOKEN ?? state.adminToken };
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
