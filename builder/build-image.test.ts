import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildManifest } from "../schemas/index.ts";
import { buildImage } from "./build-image.ts";
import { buildToLayout } from "./build-to-layout.ts";
import { bundleProject } from "./bundle.ts";
import { loadProjectConfig } from "./load-config.ts";

const run = promisify(execFile);
const HELLO = resolve(import.meta.dirname, "../examples/hello");

async function project(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "stasis-project-"));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

describe("buildImage on examples/hello", () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "stasis-build-test-"));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("builds the same manifest digest twice, into a layout skopeo and umoci accept", async () => {
    const first = await buildToLayout({ projectDir: HELLO, outDir: join(work, "oci"), buildDir: join(work, "b1") });
    const second = await buildToLayout({ projectDir: HELLO, outDir: join(work, "oci"), buildDir: join(work, "b2") });
    expect(second.digest).toBe(first.digest);
    expect(second.tag).toBe(first.tag);
    expect(first.tasks).toEqual(["hello", "hello-later"]);

    const inspect = JSON.parse((await run("skopeo", ["inspect", `oci:${first.layout}:${first.tag}`])).stdout);
    expect(inspect.Digest).toBe(first.digest);
    expect(inspect.Labels["stasis.project"]).toBe("hello");
    expect(inspect.Labels["org.opencontainers.image.created"]).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(inspect.Env).toContain("UV_USE_IO_URING=0");

    const bundle = join(work, "bundle");
    await run("umoci", ["unpack", "--image", `${first.layout}:${first.tag}`, bundle]);
    const manifest = BuildManifest.parse(JSON.parse(await readFile(join(bundle, "rootfs/app/stasis-manifest.json"), "utf8")));
    expect(manifest.entry).toBe("index.mjs");
    const hello = manifest.tasks.find((t) => t.id === "hello")!;
    expect(hello).toMatchObject({ filePath: "trigger/hello.ts", exportName: "hello", machine: { preset: "micro", memory: 256 }, retry: { maxAttempts: 2 } });
    expect(manifest.tasks.find((t) => t.id === "hello-later")).toMatchObject({ exportName: "helloLater", machine: { preset: "small-1x" }, retry: { maxAttempts: 5 } });

    // The runtime layer is enough for runc to start the image's own node.
    const config = JSON.parse(await readFile(join(bundle, "config.json"), "utf8"));
    config.process.args = ["node", "-e", "console.log('up', process.version, require('fs').existsSync('/app/index.mjs'))"];
    config.process.terminal = false;
    await writeFile(join(bundle, "config.json"), JSON.stringify(config));
    const { stdout } = await run("runc", ["run", "--bundle", bundle, `stasis-build-test-${process.pid}`], { timeout: 60_000 });
    expect(stdout.trim()).toBe(`up ${process.version} true`);
  });

  it("a new commit time changes only the app layer: the runtime layer is shared by every version", async () => {
    const a = await buildImage({ projectDir: HELLO, buildDir: join(work, "c1"), sourceDateEpoch: 1 });
    const b = await buildImage({ projectDir: HELLO, buildDir: join(work, "c2"), sourceDateEpoch: 2 });
    expect(b.digest).not.toBe(a.digest);
    expect(b.layers[0]!.digest).toBe(a.layers[0]!.digest);
    expect(b.buildManifest.contentHash).toBe(a.buildManifest.contentHash);
    expect(a.config.config?.Entrypoint).toEqual(["node", "/app/index.mjs"]);
  });
});

describe("externals", () => {
  it("keeps native packages out of the bundle and puts them, with their dependencies, into their own layer", async () => {
    const dir = await project({
      "package.json": '{"name":"natives"}',
      "node_modules/fake-native/package.json": JSON.stringify({ name: "fake-native", version: "1.2.3", main: "index.js", dependencies: { "fake-dep": "^2.0.0" } }),
      "node_modules/fake-native/binding.gyp": "{}",
      "node_modules/fake-native/index.js": "module.exports = { add: (a, b) => require('fake-dep').plus(a, b) };\n",
      "node_modules/fake-dep/package.json": JSON.stringify({ name: "fake-dep", version: "2.0.1", main: "index.js" }),
      "node_modules/fake-dep/index.js": "module.exports = { plus: (a, b) => a + b };\n",
      "trigger/math.ts": 'import { task } from "stasis/sdk";\nimport native from "fake-native";\nexport const add = task({ id: "add", run: async () => native.add(1, 2) });\n',
    });
    try {
      const image = await buildImage({ projectDir: dir, withRuntime: false, sourceDateEpoch: 0 });
      expect(image.buildManifest.externals).toEqual([{ name: "fake-native", version: "1.2.3" }]);
      expect(image.layers).toHaveLength(2);
      const { stdout } = await run("tar", ["tzf", image.layers[0]!.path]);
      expect(stdout.split("\n")).toEqual(expect.arrayContaining(["app/node_modules/fake-native/binding.gyp", "app/node_modules/fake-dep/index.js"]));
      // The bundle (built in the sandbox) is only in the app layer.
      const { stdout: bundle } = await run("tar", ["xzOf", image.layers[1]!.path, "app/index.mjs"]);
      expect(bundle).toContain("fake-native");
      expect(bundle).not.toContain("a + b");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("project loading and bundling errors", () => {
  it("names the config file and the field of a bad stasis.config.ts", async () => {
    const dir = await project({ "stasis.config.ts": 'export default { project: "Not A Slug" };\n', "trigger/a.ts": "export {};\n" });
    await expect(loadProjectConfig(dir)).rejects.toThrow(/^stasis\.config\.ts: project: project is a slug/);
    await rm(dir, { recursive: true, force: true });
  });

  it("loads a config that imports defineConfig from stasis/sdk, outside the stasis repo", async () => {
    const dir = await project({ "stasis.config.ts": 'import { defineConfig } from "stasis/sdk";\nexport default defineConfig({ project: "outside", dirs: ["jobs"] });\n', "jobs/a.ts": "export {};\n" });
    const { config, configPath } = await loadProjectConfig(dir);
    expect(config).toMatchObject({ project: "outside", dirs: ["jobs"] });
    expect(configPath).toBe(join(dir, "stasis.config.ts"));
    await rm(dir, { recursive: true, force: true });
  });

  it("without a config, takes the project from package.json and finds every trigger/ dir", async () => {
    const dir = await project({
      "package.json": JSON.stringify({ name: "@Acme/Ticket Shop" }),
      "trigger/a.ts": "export {};\n",
      "packages/billing/trigger/b.ts": "export {};\n",
      "node_modules/x/trigger/c.ts": "export {};\n",
    });
    const { config, configPath } = await loadProjectConfig(dir);
    expect(configPath).toBeNull();
    expect(config).toEqual({ project: "acme-ticket-shop", dirs: ["packages/billing/trigger", "trigger"] });
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses two tasks with one id, naming both files", async () => {
    const body = (name: string) => `import { task } from "stasis/sdk";\nexport const ${name} = task({ id: "same", run: async () => 1 });\n`;
    const dir = await project({ "package.json": '{"name":"dup"}', "trigger/one.ts": body("one"), "trigger/two.ts": body("two") });
    const error = await bundleProject({ projectDir: dir, outDir: join(dir, ".stasis/build/app") }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/"same".*trigger\/one\.ts.*trigger\/two\.ts/);
    await rm(dir, { recursive: true, force: true });
  });

  it("reports a syntax error with its file and line", async () => {
    const dir = await project({ "package.json": '{"name":"broken"}', "trigger/bad.ts": "export const x = ;\n" });
    await expect(bundleProject({ projectDir: dir, outDir: join(dir, "out") })).rejects.toThrow(/trigger\/bad\.ts:1:/);
    await rm(dir, { recursive: true, force: true });
  });
});
