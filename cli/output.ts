/** Named exit codes: scripts can tell a usage error from a failed run from an unreachable server. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  RUN_FAILED: 3,
  UNREACHABLE: 4,
} as const;

export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.FAILURE,
  ) {
    super(message);
  }
}

/** Results go to stdout (JSON with --json), progress to stderr. */
export function printResult(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
}

export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return "";
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((cell, i) => (cell ?? "").padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}
