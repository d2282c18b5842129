import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** A project written from a test: its `stasis.config.ts` naming `slug`, and `tasks` as `trigger/tasks.ts`. Returns `projectDir`. */
export async function writeTaskProject(projectDir: string, slug: string, tasks: string): Promise<string> {
  await mkdir(join(projectDir, "trigger"), { recursive: true });
  await writeFile(join(projectDir, "stasis.config.ts"), `export default { project: ${JSON.stringify(slug)} };\n`);
  await writeFile(join(projectDir, "trigger", "tasks.ts"), tasks);
  return projectDir;
}
