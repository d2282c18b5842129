import { existsSync } from "node:fs";
import type { Command } from "commander";
import { callStasisApi } from "../../builder/index.ts";
import { EnvVarName, type EnvVarListResponse } from "../../schemas/index.ts";
import { readDotEnv } from "../dotenv.ts";
import { CliError, ExitCode, printResult, table } from "../output.ts";
import { resolveEnvVarTarget } from "./env-target.ts";

interface TargetOptions {
  env?: string;
  project?: string;
  json?: boolean;
}

const ENV_HELP = "production, staging, development, preview (the set every preview inherits) or preview/<branch>; default: the API key's environment";

function withTarget(command: Command): Command {
  return command.option("--env <environment>", ENV_HELP).option("--project <slug>", "the project (default: the API key's)").option("--json", "print JSON");
}

/** `KEY=value` arguments; the value may hold `=`. */
function parseAssignments(items: string[]): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new CliError(`expected KEY=value, got ${JSON.stringify(item)}`, ExitCode.USAGE);
    const name = item.slice(0, eq);
    const checked = EnvVarName.safeParse(name);
    if (!checked.success) throw new CliError(`${JSON.stringify(name)}: ${checked.error.issues[0]!.message}`, ExitCode.USAGE);
    variables[name] = item.slice(eq + 1);
  }
  return variables;
}

export function registerEnvCommands(program: Command): void {
  const group = program.command("env").description("environment variables kept (encrypted) by the server, per environment");

  withTarget(group.command("set <assignments...>").description("set KEY=value [KEY2=value2 …] (all or nothing)")).action(async (assignments: string[], opts: TargetOptions) => {
    const variables = parseAssignments(assignments);
    const target = await resolveEnvVarTarget(opts);
    const result = await callStasisApi<{ set: string[] }>(target.apiUrl, target.token, "POST", target.path, { variables });
    printResult(Boolean(opts.json), result, () => `set ${result.set.join(", ")} in ${target.describe}`);
  });

  withTarget(group.command("list").description("list the variables (values hidden unless --reveal)"))
    .option("--reveal", "show the values")
    .action(async (opts: TargetOptions & { reveal?: boolean }) => {
      const target = await resolveEnvVarTarget(opts);
      const result = await callStasisApi<EnvVarListResponse>(target.apiUrl, target.token, "GET", `${target.path}${opts.reveal ? "?reveal=true" : ""}`);
      printResult(Boolean(opts.json), result, () => {
        if (result.data.length === 0) return `no variables in ${target.describe}`;
        const rows = result.data.map((v) => [v.name, v.value ?? "••••••", v.source === result.environment ? "" : `(from ${v.source})`]);
        return table(rows);
      });
    });

  withTarget(group.command("unset <name>").description("delete a variable (a preview's inherited value stays)")).action(async (name: string, opts: TargetOptions) => {
    const target = await resolveEnvVarTarget(opts);
    const result = await callStasisApi<{ deleted: boolean }>(target.apiUrl, target.token, "DELETE", `${target.path}/${encodeURIComponent(name)}`);
    printResult(Boolean(opts.json), result, () => (result.deleted ? `unset ${name} in ${target.describe}` : `${name} was not set in ${target.describe}`));
  });

  withTarget(group.command("import <file>").description("set every variable of a .env file (all or nothing)"))
    .option("--replace", "also delete the environment's variables that are not in the file")
    .action(async (file: string, opts: TargetOptions & { replace?: boolean }) => {
      if (!existsSync(file)) throw new CliError(`${file} does not exist`, ExitCode.USAGE);
      const variables = readDotEnv(file);
      for (const name of Object.keys(variables)) {
        const checked = EnvVarName.safeParse(name);
        if (!checked.success) throw new CliError(`${file}: ${JSON.stringify(name)}: ${checked.error.issues[0]!.message}`, ExitCode.USAGE);
      }
      const target = await resolveEnvVarTarget(opts);
      const result = await callStasisApi<{ set: string[]; deleted?: string[] }>(target.apiUrl, target.token, "POST", `${target.path}/import`, { variables, replace: Boolean(opts.replace) });
      printResult(Boolean(opts.json), result, () => `imported ${result.set.length} variable(s) into ${target.describe}${result.deleted?.length ? `; deleted ${result.deleted.join(", ")}` : ""}`);
    });
}
