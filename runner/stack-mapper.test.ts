import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStackMapper } from "./stack-mapper.ts";

// A real bundle and map from esbuild (as the builder makes them), run by a Node without
// --enable-source-maps (as task processes run now): the stack it prints names the bundle.
let dir: string;
let appDir: string;
let stack: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stasis-stack-map-"));
  await mkdir(join(dir, "src", "trigger"), { recursive: true });
  await writeFile(join(dir, "src", "trigger", "fails.ts"), ["export function charge(amount: number): number {", "  if (amount > 10) {", '    throw new Error("card declined");', "  }", "  return amount;", "}", ""].join("\n"));
  await writeFile(join(dir, "src", "entry.ts"), ['import { charge } from "./trigger/fails.ts";', "try {", "  charge(99);", "} catch (error) {", "  console.log((error as Error).stack);", "}", ""].join("\n"));
  appDir = join(dir, "app");
  await build({ entryPoints: [join(dir, "src", "entry.ts")], bundle: true, format: "esm", platform: "node", sourcemap: true, outfile: join(appDir, "index.mjs"), logLevel: "silent" });
  stack = (await promisify(execFile)(process.execPath, [join(appDir, "index.mjs")])).stdout;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("stack mapper", () => {
  it("names the TypeScript source, line and column of a frame in the bundle", async () => {
    expect(stack).toMatch(/index\.mjs:\d+:\d+/);
    const mapped = await createStackMapper().map(stack, { appDir, entry: "index.mjs" });
    expect(mapped).toContain("Error: card declined");
    // The throw is on line 3, column 11 of fails.ts; the call on line 3 of entry.ts.
    expect(mapped).toContain(`${join(dir, "src", "trigger", "fails.ts")}:3:11`);
    expect(mapped).toMatch(new RegExp(`${join(dir, "src", "entry.ts").replace(/[.]/g, "\\.")}:3:\\d+`));
    expect(mapped).not.toMatch(/index\.mjs:\d+:\d+/);
  });

  it("leaves text without bundle frames, and frames of a bundle without a map, as they are", async () => {
    const mapper = createStackMapper();
    expect(await mapper.map("plain log line: 3 items", { appDir, entry: "index.mjs" })).toBe("plain log line: 3 items");
    const elsewhere = "    at run (file:///srv/other/index.mjs:1:20)";
    expect(await mapper.map(elsewhere, { appDir: join(dir, "no-such-app"), entry: "index.mjs" })).toBe(elsewhere);
  });
});
