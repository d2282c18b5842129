// `bash scripts/up.sh` leaves none of its stand-in services running when `stasis dev` fails.
import { spawn } from "node:child_process";
import { readlink } from "node:fs/promises";
import { join } from "node:path";
import { expect, it } from "vitest";
import { processesMatching } from "./support/processes.ts";
import { REPO_ROOT } from "./support/stack.ts";
import { waitFor } from "./support/wait-for.ts";

it("stops the stand-in services when stasis dev fails", async () => {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith("VITEST") || name === "DATABASE_URL") delete env[name];
  const child = spawn("bash", [join(REPO_ROOT, "scripts", "up.sh"), "--no-such-option"], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  expect(code, stderr).not.toBe(0);
  expect(stderr).toContain("stand-in services on"); // they did start
  expect(stderr).toMatch(/unknown option '--no-such-option'/);
  const services = join(REPO_ROOT, "examples", "movie-tickets");
  await waitFor("no stand-in service left running", async () => (await servicesOf(services)).length === 0, { timeoutMs: 10_000 });
});

/** Processes running the example's services from this work tree (their cwd is the example). */
async function servicesOf(exampleDir: string): Promise<number[]> {
  const pids = await processesMatching("services/serve.ts");
  const ours: number[] = [];
  for (const pid of pids) if ((await readlink(`/proc/${pid}/cwd`).catch(() => "")) === exampleDir) ours.push(pid);
  return ours;
}
