import { execFile } from "node:child_process";
import { CLI } from "./stack.ts";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The `stasis` command as a user runs it: a child process; `undefined` in `env` removes a variable. */
export function runCli(args: string[], options: { cwd: string; env: Record<string, string | undefined>; timeoutMs?: number }): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...options.env })) if (v !== undefined) env[k] = v;
  return new Promise((done) =>
    execFile(process.execPath, [CLI, ...args], { cwd: options.cwd, env, timeout: options.timeoutMs ?? 60_000 }, (error, stdout, stderr) =>
      done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}
