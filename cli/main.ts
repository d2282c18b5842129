import { Command, CommanderError } from "commander";
import { readFileSync } from "node:fs";
import { RunPollTimeoutError, StasisApiError } from "../sdk/index.ts";
import { commandsFor } from "./command-modules.ts";
import { CliError, ExitCode } from "./output.ts";

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
const program = new Command("stasis")
  .description("durable TypeScript tasks that freeze while they wait")
  .version(version, "-V, --version", "print the version of stasis")
  .exitOverride();
for (const register of await commandsFor(process.argv.slice(2))) register(program);

try {
  await program.parseAsync(process.argv);
} catch (thrown) {
  process.exitCode = report(thrown);
}

function report(thrown: unknown): number {
  if (thrown instanceof CommanderError) return thrown.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  const error = thrown instanceof Error ? thrown : new Error(String(thrown));
  if (error instanceof CliError) {
    process.stderr.write(`stasis: ${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof RunPollTimeoutError) {
    process.stderr.write(`stasis: ${error.message}; it goes on: stasis runs get ${error.runId}\n`);
    return ExitCode.RUN_FAILED;
  }
  if (error instanceof StasisApiError || error.name === "StasisApiCallError") {
    const status = (error as StasisApiError).status;
    process.stderr.write(`stasis: ${error.message}\n`);
    return status === 401 || status === 403 ? ExitCode.USAGE : ExitCode.FAILURE;
  }
  if (causedBy(error, "ECONNREFUSED")) {
    process.stderr.write(`stasis: cannot reach the Stasis API (${error.message})\n`);
    return ExitCode.UNREACHABLE;
  }
  process.stderr.write(`stasis: ${error.stack ?? error.message}\n`);
  return ExitCode.FAILURE;
}

function causedBy(error: unknown, code: string): boolean {
  for (let e = error as { code?: string; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) if (e.code === code) return true;
  return false;
}
