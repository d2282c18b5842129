// Crafted image layers, unpacked as root through the image store the runner uses: each attack is
// refused with UNSAFE_LAYER naming the rule, and nothing outside the unpack root changes.
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openImageStore } from "../../builder/index.ts";
import { craftedImage, type RawEntry } from "./crafted-image.ts";

let work: string;
let outside: string;
/** Climbs from any unpack root to `/`, then into the victim dir by its absolute path. */
let up: string;

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir, { recursive: true })).sort()) {
    const path = join(dir, name);
    const st = await lstat(path);
    out[name] = st.isFile() ? `${st.nlink}:${await readFile(path, "utf8")}` : st.isDirectory() ? "dir" : "other";
  }
  return out;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "stasis-unpack-"));
  outside = join(work, "outside");
  await mkdir(join(outside, "dir"), { recursive: true });
  await writeFile(join(outside, "victim"), "precious\n");
  await writeFile(join(outside, "dir", "keep"), "keep me\n");
  up = `${"../".repeat(12)}${outside.slice(1)}`;
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let n = 0;
async function unpack(layers: RawEntry[][]) {
  const dir = join(work, `image-${++n}`);
  const { ref } = await craftedImage(dir, layers);
  return openImageStore(ref).fetch(ref, join(work, "cache"));
}

async function expectRefused(layers: RawEntry[][], rule: RegExp): Promise<void> {
  const before = await snapshot(outside);
  const error = await unpack(layers).then(() => null, (e: Error & { code?: string }) => e);
  expect(error, "the layer was unpacked").not.toBeNull();
  expect(error!.code).toBe("UNSAFE_LAYER");
  expect(error!.message).toMatch(rule);
  expect(await snapshot(outside)).toEqual(before);
  // No half-unpacked image is left in the cache.
  expect((await readdir(join(work, "cache"))).filter((d) => !d.startsWith("."))).toEqual([]);
}

describe("crafted layers are refused before they change anything outside the root", () => {
  it("a whiteout that climbs out (`../…/.wh.victim`)", async () => {
    await expectRefused([[{ type: "file", path: "app/a", data: "a" }], [{ type: "file", path: `${up}/.wh.victim` }]], /contains '\.\.'/);
  });

  it("an opaque whiteout that climbs out (`../…/.wh..wh..opq`)", async () => {
    await expectRefused([[{ type: "file", path: `${up}/dir/.wh..wh..opq` }]], /contains '\.\.'/);
  });

  it("an absolute entry path", async () => {
    await expectRefused([[{ type: "file", path: `${outside}/pwned`, data: "pwned" }]], /is absolute/);
    await expectRefused([[{ type: "file", path: `${outside}/.wh.victim` }]], /is absolute/);
  });

  it("a `..` entry", async () => {
    await expectRefused([[{ type: "file", path: `${up}/pwned`, data: "pwned" }]], /contains '\.\.'/);
  });

  it("a symlink to outside, then a write through it (same layer and a later one)", async () => {
    await expectRefused([[{ type: "symlink", path: "escape", target: outside }, { type: "file", path: "escape/pwned", data: "pwned" }]], /written through the symlink escape this layer creates/);
    await expectRefused([[{ type: "symlink", path: "escape", target: up }]], /symlink "escape" -> .* points outside the image root/);
    await expectRefused([[{ type: "symlink", path: "escape", target: outside }], [{ type: "file", path: "escape/pwned", data: "pwned" }]], /written through the symlink escape of a lower layer/);
    await expectRefused([[{ type: "symlink", path: "escape", target: outside }], [{ type: "file", path: "escape/.wh.victim" }]], /written through the symlink escape/);
    await expectRefused([[{ type: "symlink", path: "escape", target: join(outside, "dir") }], [{ type: "file", path: "escape/.wh..wh..opq" }]], /written through the symlink escape/);
  });

  it("a hardlink to a file outside the root", async () => {
    await expectRefused([[{ type: "hardlink", path: "link", target: `${up}/victim` }]], /hardlink target .* contains '\.\.'/);
    await expectRefused([[{ type: "hardlink", path: "link", target: `${outside}/victim` }]], /hardlink target .* is absolute/);
    await expectRefused([[{ type: "symlink", path: "escape", target: outside }, { type: "hardlink", path: "link", target: "escape/victim" }]], /symlink escape/);
  });

  it("unpacks an ordinary image: whiteouts and opaque dirs apply to lower layers, symlinks stay links", async () => {
    const image = await unpack([
      [
        { type: "file", path: "a/x", data: "x" },
        { type: "file", path: "a/y", data: "y" },
        { type: "file", path: "b/z", data: "z" },
        { type: "symlink", path: "etc-link", target: "/etc" },
      ],
      [
        { type: "file", path: "a/.wh.x" },
        { type: "file", path: "b/.wh..wh..opq" },
        { type: "file", path: "b/new", data: "new" },
        { type: "hardlink", path: "a/y2", target: "a/y" },
      ],
    ]);
    expect((await readdir(join(image.rootfsDir, "a"))).sort()).toEqual(["y", "y2"]);
    expect(await readdir(join(image.rootfsDir, "b"))).toEqual(["new"]);
    expect((await lstat(join(image.rootfsDir, "etc-link"))).isSymbolicLink()).toBe(true);
  });
});

describe("a malicious layer through the deployments API and a runner", () => {
  it("fails its own run with UNSAFE_LAYER; the runner process lives and runs the next version", async () => {
    const { startTestStack, REPO_ROOT } = await import("../support/stack.ts");
    const stack = await startTestStack({ project: "hello" });
    try {
      const good = await stack.deploy(`${REPO_ROOT}/examples/hello`, { promote: false });
      const manifest = (await stack.local.db("deployments").where({ id: good.id }).first("manifest")).manifest;
      const runner = await stack.startRunnerProcess({ checkpoints: false });
      const before = await snapshot(outside);
      const evil = await craftedImage(join(work, "evil-image"), [[{ type: "file", path: `${up}/.wh.victim` }, { type: "file", path: "app/index.mjs", data: "" }]]);
      const created = await stack.api<{ version: string }>("POST", "/api/v1/deployments", { imageRef: evil.ref, imageDigest: evil.digest, manifest, promote: false });
      const { id } = await stack.api<{ id: string }>("POST", "/api/v1/tasks/hello/trigger", { payload: {}, options: { version: created.version } });
      const run = await stack.waitForRun(id, (r) => r.status === "FAILED", "the run of the malicious image to fail", 90_000);
      expect(run.error?.message).toMatch(/is refused: entry ".*\.wh\.victim" contains '\.\.'/);
      expect(await snapshot(outside)).toEqual(before);
      expect(runner.child.exitCode).toBeNull();

      const ok = await stack.api<{ id: string }>("POST", "/api/v1/tasks/hello/trigger", { payload: { name: "next" }, options: { version: good.version } });
      expect((await stack.waitForRun(ok.id, (r) => r.status === "COMPLETED", "the next run")).output).toEqual({ greeting: "Hello, next!" });
    } finally {
      await stack.stop();
    }
  });
});
