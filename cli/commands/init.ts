import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { CliError, ExitCode, printResult } from "../output.ts";

const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** This stasis package, as a dependency a new project can install (it is not on a registry). */
const PACKAGE_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export function registerInitCommand(program: Command): void {
  program
    .command("init")
    .description("set up a Stasis project here: stasis.config.ts, trigger/example.ts, the dependency, .gitignore")
    .option("--dir <dir>", "the project directory", ".")
    .option("--project <slug>", "project slug (default: the directory's name, lowercased)")
    .option("--json", "print {\"project\",\"files\",\"next\"}")
    .action(async (opts: { dir: string; project?: string; json?: boolean }) => {
      const dir = resolve(opts.dir);
      const project = opts.project ?? slugOf(basename(dir));
      if (!SLUG.test(project)) throw new CliError(`--project must be a slug (lowercase letters, digits, '-'), not ${JSON.stringify(project)}`, ExitCode.USAGE);
      if (existsSync(join(dir, "stasis.config.ts"))) throw new CliError(`${join(dir, "stasis.config.ts")} exists already: this is a Stasis project`, ExitCode.USAGE);
      await mkdir(join(dir, "trigger"), { recursive: true });

      const written: string[] = [];
      const write = async (file: string, text: string) => {
        if (existsSync(join(dir, file))) return;
        await writeFile(join(dir, file), text);
        written.push(file);
      };
      await write("stasis.config.ts", configFile(project));
      await write(join("trigger", "example.ts"), EXAMPLE_TASK);
      if (await addDependency(dir)) written.push("package.json");
      if (await ignoreStateDir(dir)) written.push(".gitignore");

      const next = ["npm install", "npx stasis dev"];
      printResult(Boolean(opts.json), { project, files: written, next }, () =>
        [`created the Stasis project ${project} in ${dir}: ${written.join(", ")}`, "", "next:", ...next.map((c) => `  ${c}`), "", "then, in another terminal: npx stasis trigger example --payload '{\"name\":\"Ada\"}' --wait"].join("\n"),
      );
    });
}

function slugOf(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63) || "my-tasks";
}

function configFile(project: string): string {
  return `import { defineConfig } from "stasis/sdk";

export default defineConfig({
  project: "${project}",
  // Every \`trigger/\` directory holds tasks; retries and machine apply to tasks that set none.
  retries: { default: { maxAttempts: 3 } },
});
`;
}

const EXAMPLE_TASK = `import { logger, task, wait } from "stasis/sdk";

export const example = task({
  id: "example",
  run: async (payload: { name?: string }) => {
    logger.info("starting", { name: payload?.name });
    await wait.for({ seconds: 10 }); // long enough to freeze: no process runs meanwhile
    return { greeting: \`Hello, \${payload?.name ?? "world"}!\` };
  },
});
`;

/** Adds `stasis` to package.json (creating one when there is none). False when it is there already. */
async function addDependency(dir: string): Promise<boolean> {
  const file = join(dir, "package.json");
  const pkg = existsSync(file) ? (JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>) : { name: slugOf(basename(dir)), private: true, type: "module" };
  const dependencies = (pkg.dependencies ?? {}) as Record<string, string>;
  if (dependencies.stasis) return false;
  const from = relative(dir, PACKAGE_ROOT) || ".";
  pkg.dependencies = { ...dependencies, stasis: `file:${from}` };
  await writeFile(file, `${JSON.stringify(pkg, null, 2)}\n`);
  return true;
}

/** `.stasis/` holds the dev database and keys: never commit it. */
async function ignoreStateDir(dir: string): Promise<boolean> {
  const file = join(dir, ".gitignore");
  const text = existsSync(file) ? await readFile(file, "utf8") : "";
  const lines = text.split("\n").map((l) => l.trim());
  const missing = [".stasis/", "node_modules/"].filter((entry) => !lines.includes(entry) && !lines.includes(entry.slice(0, -1)));
  if (missing.length === 0) return false;
  await writeFile(file, `${text}${text && !text.endsWith("\n") ? "\n" : ""}${missing.join("\n")}\n`);
  return true;
}
