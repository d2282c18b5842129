// Where a criu run as the task's user keeps its kernel-probe cache (criuRuntimeDir): a root-only dir
// on a tmpfs, or the runner's own dir when the shared one is not safe to use.
import { execFileSync } from "node:child_process";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { criuRuntimeDir } from "./criu-user.ts";

const shm = mkdtempSync("/dev/shm/stasis-criu-user-test-");
const work = mkdtempSync(path.join(tmpdir(), "stasis-criu-user-test-"));
afterAll(() => [shm, work].forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const ownDir = path.join(work, "criu-run");
const tmpfs = (dir: string) => execFileSync("stat", ["-f", "-c", "%T", dir], { encoding: "utf8" }).trim() === "tmpfs";

describe.runIf(tmpfs("/dev/shm") && !tmpfs(tmpdir()))("criuRuntimeDir", () => {
  it("makes the shared dir on a tmpfs, 0700 and ours, and uses it", () => {
    const shared = path.join(shm, "fresh");
    expect(criuRuntimeDir(work, shared)).toBe(shared);
    const st = lstatSync(shared);
    expect([st.isDirectory(), st.mode & 0o777, st.uid]).toEqual([true, 0o700, process.getuid!()]);
  });

  it("leaves a shared dir open to others alone: the runner's own dir then", () => {
    const shared = path.join(shm, "open");
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    expect(criuRuntimeDir(work, shared)).toBe(ownDir);
    expect(lstatSync(ownDir).mode & 0o777).toBe(0o700);
  });

  it("leaves a symlink in its place alone, even to a dir that would do", () => {
    const target = path.join(shm, "target");
    mkdirSync(target, { mode: 0o700 });
    const shared = path.join(shm, "link");
    symlinkSync(target, shared);
    expect(criuRuntimeDir(work, shared)).toBe(ownDir);
  });

  it("does not use a dir that is not on a tmpfs, where criu would not keep its cache", () => {
    const shared = path.join(work, "on-disk");
    expect(criuRuntimeDir(work, shared)).toBe(ownDir);
  });
});
