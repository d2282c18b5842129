// A checkpoint's unpack on a resume's path forks nothing: a shell started ahead runs `zstd -d | tar -x`.
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { waitFor } from "../../test/support/wait-for.ts";
import { pidAlive } from "../workload/pid-alive.ts";
import { packDir, packDirInto, unpackFile } from "./tar-zstd.ts";

const scratch = await mkdtemp(path.join(tmpdir(), "tar-zstd-"));
afterAll(() => rm(scratch, { recursive: true, force: true }));
const key = randomBytes(32);

/** This process's children waiting to unpack (their command line names them). */
async function waitingShells(): Promise<number[]> {
  const children = (await readFile(`/proc/${process.pid}/task/${process.pid}/children`, "utf8").catch(() => "")).trim().split(/\s+/).filter(Boolean).map(Number);
  const shells: number[] = [];
  for (const pid of children) if ((await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).includes("checkpoint-unpack")) shells.push(pid);
  return shells;
}

async function checkpointFiles(): Promise<{ dir: string; files: Record<string, Buffer> }> {
  const dir = await mkdtemp(path.join(scratch, "images-"));
  const files = { "pages-1.img": randomBytes(3 * 2 ** 20), "core-1.img": Buffer.from("core"), "resume.json": Buffer.from('{"callId":1}') };
  for (const [name, data] of Object.entries(files)) await writeFile(path.join(dir, name), data);
  return { dir, files };
}

async function expectUnpacked(dir: string, files: Record<string, Buffer>): Promise<void> {
  expect((await readdir(dir)).sort()).toEqual(Object.keys(files).sort());
  for (const [name, data] of Object.entries(files)) expect((await readFile(path.join(dir, name))).equals(data), name).toBe(true);
}

/** Processes whose command line names `dir` (a pack's tar, say). */
async function processesNaming(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const argv = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).split("\0");
    if (argv.includes(dir)) found.push(Number(entry));
  }
  return found;
}

describe("packing a checkpoint", () => {
  it("aborted mid-stream (the wait ended while it was stored), ends its tar and zstd and rejects", async () => {
    const { dir } = await checkpointFiles();
    await writeFile(path.join(dir, "pages-2.img"), randomBytes(48 * 2 ** 20));
    const stop = new AbortController();
    const sink = new Writable({ write: (_chunk, _encoding, done) => (stop.abort(), done()) });
    await expect(packDirInto(dir, sink, key, stop.signal)).rejects.toThrow(/abort/i);
    await waitFor("no tar or zstd of the pack left", async () => (await processesNaming(dir)).length === 0 || undefined);
  });
});

describe("unpacking a stored checkpoint", () => {
  it("goes through the shell started ahead once there is one, and another waits after it", async () => {
    const { dir, files } = await checkpointFiles();
    const sealed = path.join(scratch, "first.tar.zst.sealed");
    await packDir(dir, sealed, key);
    // The first unpack of this process forks its own shell and has one started for the next.
    await mkdir(path.join(scratch, "out-1"));
    await unpackFile(sealed, path.join(scratch, "out-1"), key);
    await expectUnpacked(path.join(scratch, "out-1"), files);

    const waiting = await waitFor("a shell waiting to unpack", async () => (await waitingShells())[0]);
    await mkdir(path.join(scratch, "out-2"));
    await unpackFile(sealed, path.join(scratch, "out-2"), key);
    await expectUnpacked(path.join(scratch, "out-2"), files);
    // It ran that unpack and ended with it; a new one waits for the next.
    expect(pidAlive(waiting)).toBe(false);
    const next = await waitFor("the next shell waiting to unpack", async () => (await waitingShells()).find((pid) => pid !== waiting));
    expect(next).not.toBe(waiting);
    // Its command went through a file of ours beside the target, removed with it: nothing but the checkpoint in or beside it.
    expect((await readdir(scratch)).filter((name) => name.startsWith("out-2"))).toEqual(["out-2"]);
  });

  it("through the waiting shell, a failing unpack says what tar said and leaves nothing beside its target", async () => {
    const { dir } = await checkpointFiles();
    const sealed = path.join(scratch, "second.tar.zst.sealed");
    await packDir(dir, sealed, key);
    const waiting = await waitFor("a shell waiting to unpack", async () => (await waitingShells())[0]);
    const missing = path.join(scratch, "never-made");
    await expect(unpackFile(sealed, missing, key)).rejects.toThrow(/zstd -d \| tar -x exited with 2: .*never-made.*No such file or directory/s);
    expect(pidAlive(waiting)).toBe(false);
    expect((await readdir(scratch)).filter((name) => name.startsWith("never-made"))).toEqual([]);
  });
});
