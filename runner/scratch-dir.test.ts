import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ownScratchDir, removeOrphanedScratch } from "./scratch-dir.ts";

describe("a runner's scratch dir", () => {
  let workDir: string;
  beforeEach(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), "stasis-scratch-"));
  });
  afterEach(() => rm(workDir, { recursive: true, force: true }));

  it("is removed by the next runner on the work dir once its owner is killed, and left alone while it lives", async () => {
    // Another runner process on the same work dir, with a dump under way in its scratch.
    const script = `const { ownScratchDir } = await import(${JSON.stringify(path.resolve("runner/scratch-dir.ts"))});
      const { mkdir, writeFile } = await import("node:fs/promises");
      const dir = await ownScratchDir(${JSON.stringify(workDir)});
      await mkdir(dir + "/checkpoints/run_1-1-1/images", { recursive: true });
      await writeFile(dir + "/checkpoints/run_1-1-1/images/pages-1.img", "memory in clear");
      console.log(dir);
      setInterval(() => {}, 1000);`;
    const other = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise((resolve) => other.once("exit", resolve));
    try {
      const otherDir = await new Promise<string>((resolve) => other.stdout!.once("data", (chunk: Buffer) => resolve(chunk.toString().trim())));
      expect(path.basename(otherDir)).toMatch(new RegExp(`^${other.pid}-\\d+$`));
      const mine = await ownScratchDir(workDir);
      await writeFile(path.join(mine, "restore-in-progress"), "x");
      // A dir of a process that is long gone (no such pid), and one whose pid was reused (same pid, other start time).
      await writeFile(path.join(workDir, "scratch", "999999999-12345"), "");
      await writeFile(path.join(workDir, "scratch", `${process.pid}-1`), "");

      expect(await removeOrphanedScratch(workDir)).toBe(2);
      expect((await readdir(path.join(workDir, "scratch"))).sort()).toEqual([path.basename(otherDir), path.basename(mine)].sort());

      other.kill("SIGKILL");
      await exited;
      expect(await removeOrphanedScratch(workDir)).toBe(1);
      expect(await readdir(path.join(workDir, "scratch"))).toEqual([path.basename(mine)]);
      expect(await readdir(mine)).toEqual(["restore-in-progress"]);
    } finally {
      other.kill("SIGKILL");
    }
  });
});
