// A task image built on a runtime image from the registry: its Node layer is mounted from the
// runtime repository (a deploy uploads only the app's layers), the image says which Node it runs,
// and two different Node binaries building the same commit give the same image digest.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildImage, openImageRepository } from "../builder/index.ts";
import { runCli } from "./support/cli.ts";
import { startRegistry, type TestRegistry } from "./support/registry.ts";
import { secondNode } from "./support/second-node.ts";
import { REPO_ROOT } from "./support/stack.ts";

const run = promisify(execFile);
const HELLO = join(REPO_ROOT, "examples/hello");
const CHILD = join(REPO_ROOT, "test/support/build-image-child.ts");

let registry: TestRegistry;
let work: string;
let node24: string;
beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), "stasis-runtime-image-"));
  node24 = await secondNode();
});
afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

type ChildBuild = { digest: string; node: string | null; builtBy: string; layers: string[] };
async function buildWith(node: string, buildDir: string, ref?: string): Promise<ChildBuild> {
  const { stdout } = await run(node, ["--import", "tsx", CHILD, HELLO, join(work, buildDir), ...(ref ? [ref] : [])], { cwd: REPO_ROOT, timeout: 240_000, maxBuffer: 16 << 20 });
  return JSON.parse(stdout.trim().split("\n").pop()!) as ChildBuild;
}

it("mounts the runtime layer from the registry, uploads only the app's layers, and labels the Node", async () => {
  const pushedRuntime = await runCli(["admin", "push-runtime", "--push", `${registry.host}/stasis-runtime`, "--node", node24, "--json"], { cwd: work, env: {}, timeoutMs: 240_000 });
  expect(pushedRuntime.code, pushedRuntime.stderr).toBe(0);
  const runtime = JSON.parse(pushedRuntime.stdout) as { ref: string; node: string; bytesUploaded: number };
  expect(runtime.node).toMatch(/^v24\./);

  const progress: string[] = [];
  const image = await buildImage({ projectDir: HELLO, buildDir: join(work, "in-process"), base: { kind: "registry", ref: runtime.ref }, onProgress: (m) => progress.push(m) });
  expect(image.nodeVersion).toBe(runtime.node);
  expect(image.config.config?.Labels?.["stasis.node-version"]).toBe(runtime.node);
  expect(image.config.config?.Labels?.["stasis.runtime-image"]).toBe(runtime.ref);
  expect(progress.join("\n")).toContain(`the image runs Node ${runtime.node} from the runtime image`);

  const started = Date.now();
  const pushed = await openImageRepository(`${registry.host}/hello`).push(image, "first", (m) => progress.push(m));
  const appBytes = image.layers.slice(1).reduce((n, l) => n + l.size, 0) + image.configBlob.size;
  console.log(`runtime layer ${image.layers[0]!.size} bytes mounted; uploaded ${pushed.bytesUploaded} bytes (app layers + config) in ${Date.now() - started} ms`);
  expect(pushed.bytesUploaded).toBe(appBytes);
  expect(progress.some((m) => m.startsWith(`mounted ${image.layers[0]!.digest.slice(7, 19)} from stasis-runtime`))).toBe(true);
  // The hello repository now holds the runtime layer: a runner pulling hello@digest gets every blob.
  const head = await fetch(`${registry.url}/v2/hello/blobs/${image.layers[0]!.digest}`, { method: "HEAD" });
  expect(head.status).toBe(200);
  await image.dispose();
}, 600_000);

it("gives one image digest whichever Node builds it, while the builder's own Node would not", async () => {
  const runtime = JSON.parse((await runCli(["admin", "push-runtime", "--push", `${registry.host}/stasis-runtime`, "--node", node24, "--json"], { cwd: work, env: {}, timeoutMs: 240_000 })).stdout) as { ref: string };
  const viaNode20 = await buildWith(process.execPath, "a", runtime.ref);
  const viaNode24 = await buildWith(node24, "b", runtime.ref);
  console.log(`built by ${viaNode20.builtBy}: ${viaNode20.digest}; by ${viaNode24.builtBy}: ${viaNode24.digest}`);
  expect(viaNode20.builtBy).not.toBe(viaNode24.builtBy);
  expect(viaNode24.digest).toBe(viaNode20.digest);
  expect(viaNode24.node).toMatch(/^v24\./);

  // Without a runtime image the image packages the builder's own Node: the digests differ.
  const local20 = await buildWith(process.execPath, "c");
  const local24 = await buildWith(node24, "d");
  expect(local20.node).toBe(viaNode20.builtBy);
  expect(local24.digest).not.toBe(local20.digest);
  expect(local24.layers.slice(1)).toEqual(local20.layers.slice(1)); // only the Node layer differs
}, 600_000);
