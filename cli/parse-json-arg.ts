import { CliError, ExitCode } from "./output.ts";

export function parseJsonArg(flag: string, text: string | undefined): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliError(`${flag} is not valid JSON: ${(error as Error).message}`, ExitCode.USAGE);
  }
}
