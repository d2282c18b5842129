import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { callStasisApi } from "../../builder/index.ts";
import type { RotateKeyResponse } from "../../schemas/index.ts";
import { DevState, findDevStateFile } from "../api-target.ts";
import { CliError, ExitCode, printResult } from "../output.ts";

/** STASIS_API_URL + STASIS_ADMIN_TOKEN, else the running `stasis dev` of this project. */
function adminTarget(): { apiUrl: string; token: string } {
  if (process.env.STASIS_API_URL && process.env.STASIS_ADMIN_TOKEN) return { apiUrl: process.env.STASIS_API_URL, token: process.env.STASIS_ADMIN_TOKEN };
  const file = findDevStateFile();
  const state = file ? DevState.safeParse(JSON.parse(readFileSync(file, "utf8"))) : null;
  if (!state?.success) throw new CliError("set STASIS_API_URL and STASIS_ADMIN_TOKEN (or run `stasis dev` in this project)", ExitCode.USAGE);
  return { apiUrl: process.env.STASIS_API_URL ?? state.data.apiUrl, token: process.env.STASIS_ADMIN_TOKEN ?? state.data.adminToken };
}

export function registerAdminCommands(program: Command): void {
  const group = program.command("admin").description("operator commands (admin token)");
  group
    .command("rotate-key")
    .description("re-wrap every project's data key under the server's STASIS_ENCRYPTION_KEY (start the servers with the new key and the old one as STASIS_ENCRYPTION_KEY_PREVIOUS first)")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const { apiUrl, token } = adminTarget();
      const result = await callStasisApi<RotateKeyResponse>(apiUrl, token, "POST", "/api/v1/admin/encryption/rotate-key");
      printResult(Boolean(opts.json), result, () => `re-wrapped ${result.rewrapped} of ${result.total} data key(s) under master key ${result.masterKeyId}; STASIS_ENCRYPTION_KEY_PREVIOUS can now be removed`);
    });
}
