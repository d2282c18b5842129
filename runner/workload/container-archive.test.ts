import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { c as createTar, x as extractTar } from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { retargetArchive } from "./container-archive.ts";

describe("retargetArchive: a Podman checkpoint export rebound to this restore's link dir", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "stasis-container-archive-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function exportLike(name: string, files: Record<string, string>): Promise<string> {
    const src = path.join(dir, `${name}-src`);
    for (const [file, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(src, file)), { recursive: true });
      await writeFile(path.join(src, file), text);
    }
    const archive = path.join(dir, `${name}.tar`);
    await createTar({ cwd: src, file: archive }, Object.keys(files).map((f) => f.split("/")[0]!));
    return archive;
  }

  it("points the link mount's source (and only it) at the new dir; CRIU's images pass through untouched", async () => {
    const spec = { mounts: [{ destination: "/run/stasis-link", source: "/old/link", type: "bind" }, { destination: "/old/link-not", source: "/old/link-not" }], process: { args: ["node", "/run/stasis-link/shim.mjs"] } };
    const config = { spec, Binds: ["/old/link:/run/stasis-link"], userVolumes: ["/old/link/sub"], conmonPidFile: "/run/a/overlay-containers/old/userdata/conmon.pid", pid_file: "/run/a/overlay-containers/old/userdata/pidfile" };
    const archive = await exportLike("one", { "config.dump": JSON.stringify(config), "spec.dump": JSON.stringify(spec), "checkpoint/pages-1.img": "memory" });
    const out = path.join(dir, "one-out");
    await mkdir(out);
    await pipeline(await retargetArchive(archive, path.join(dir, "one-stage"), "/old/link", "/new/link"), extractTar({ cwd: out }));
    const newSpec = JSON.parse(await readFile(path.join(out, "spec.dump"), "utf8"));
    expect(newSpec.mounts).toEqual([{ destination: "/run/stasis-link", source: "/new/link", type: "bind" }, { destination: "/old/link-not", source: "/old/link-not" }]);
    expect(newSpec.process.args).toEqual(["node", "/run/stasis-link/shim.mjs"]);
    const newConfig = JSON.parse(await readFile(path.join(out, "config.dump"), "utf8"));
    expect(newConfig.Binds).toEqual(["/new/link:/run/stasis-link"]);
    expect(newConfig.userVolumes).toEqual(["/new/link/sub"]);
    // The dumping engine's own run-root paths are left for the restoring engine to derive.
    expect(newConfig).not.toHaveProperty("conmonPidFile");
    expect(newConfig).not.toHaveProperty("pid_file");
    expect(await readFile(path.join(out, "checkpoint/pages-1.img"), "utf8")).toBe("memory");
  });

  it("names the problem when the tar is not a Podman export", async () => {
    const archive = await exportLike("two", { "something.txt": "x" });
    await expect(retargetArchive(archive, path.join(dir, "two-stage"), "/old/link", "/new/link")).rejects.toThrow(/not a Podman checkpoint export: config.dump is missing/);
  });
});
