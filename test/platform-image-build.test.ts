// Stasis's own image is reproducible: two builds from this checkout, one pushed to a registry and
// one written as an OCI layout, have one digest, and the pushed one carries the CRIU version it was
// built with. (test/platform-image.test.ts runs the image.) Builds touch no mount: a light test.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runCli } from "./support/cli.ts";
import { startRegistry, type TestRegistry } from "./support/registry.ts";
import { REPO_ROOT } from "./support/stack.ts";

const run = promisify(execFile);
let registry: TestRegistry;
let dir: string;

beforeAll(async () => {
  registry = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), "stasis-platform-build-"));
});

afterAll(async () => {
  await registry?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Built {
  digest: string;
  ref: string;
  tag: string;
  criu: string;
}

async function build(args: string[]): Promise<Built> {
  const result = await runCli(["admin", "build-image", ...args, "--json"], { cwd: REPO_ROOT, env: {}, timeoutMs: 300_000 });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Built;
}

it("builds the same digest twice, pushed or written as a layout", async () => {
  const pushed = await build(["--push", `${registry.host}/stasis`]);
  const written = await build(["--out", join(dir, "layout")]);
  expect(written.digest).toBe(pushed.digest);
  expect(pushed.ref).toBe(`${registry.host}/stasis@${pushed.digest}`);
  const inspected = JSON.parse((await run("skopeo", ["inspect", "--tls-verify=false", `docker://${registry.host}/stasis:${pushed.tag}`])).stdout) as { Digest: string; Labels: Record<string, string> };
  expect(inspected.Digest).toBe(pushed.digest);
  expect(inspected.Labels["stasis.criu-version"]).toBe(pushed.criu);
  const layout = JSON.parse((await run("skopeo", ["inspect", `oci:${join(dir, "layout")}`])).stdout) as { Digest: string };
  expect(layout.Digest).toBe(pushed.digest);
}, 600_000);
