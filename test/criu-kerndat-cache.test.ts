// CRIU probes the kernel at the start of every call unless it finds the result of an earlier probe;
// it keeps that only on a tmpfs. The criu scripts/setup-system.sh installs keeps it in /dev/criu.kdat
// (not /run/criu.kdat: /run is on disk on this kind of VM), so only its first call of a boot probes.
import { execFile } from "node:child_process";
import { lstat, rm } from "node:fs/promises";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const CACHE = "/dev/criu.kdat";
const runsAsRoot = process.getuid?.() === 0;

describe.runIf(runsAsRoot)("criu's kernel probe, as setup installs criu", () => {
  it("is kept between calls in /dev/criu.kdat: root's only, on a tmpfs", async () => {
    await rm(CACHE, { force: true });
    const { stdout } = await run("criu", ["check"]);
    expect(stdout).toContain("Looks good");
    const st = await lstat(CACHE);
    expect([st.isFile(), st.uid, st.mode & 0o777]).toEqual([true, 0, 0o600]);
    expect(st.size).toBeGreaterThan(0);
    const { stdout: fsType } = await run("stat", ["-f", "-c", "%T", CACHE]);
    expect(fsType.trim()).toBe("tmpfs");
  });
});
