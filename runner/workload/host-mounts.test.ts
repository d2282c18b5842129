// Other software's mounts on the host. Namespaces mounted there (`ip netns add`, a container engine's network
// namespaces) are copied into a task's mount namespace at start; CRIU cannot dump such nsfs mounts
// ("doesn't have a proper root mount"). A task still checkpoints and restores, and the host keeps
// its namespace mount.
import { execFile, spawn } from "node:child_process";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProcessRuntime } from "./index.ts";
import { createIpcClient } from "./test-support/ipc-client.ts";
import { useTaskFixture } from "./test-support/task-fixture.ts";
import { mountsToDetach, parseMountinfo } from "./transient-mounts.ts";

const run = promisify(execFile);
const runtime = await createProcessRuntime();
const netns = `stasis-test-${process.pid}`;
const f = useTaskFixture();

async function hostHasNetnsMount(): Promise<boolean> {
  return parseMountinfo(await readFile("/proc/self/mountinfo", "utf8")).some((m) => m.fsType === "nsfs" && m.mountPoint.endsWith(`/netns/${netns}`));
}

describe.skipIf(!runtime.checkpoints.available)("a network namespace mounted on the host", () => {
  beforeAll(async () => {
    await run("ip", ["netns", "add", netns]);
  });
  afterAll(async () => {
    await run("ip", ["netns", "delete", netns]).catch(() => {});
  });

  it("does not stop a task from being checkpointed and restored, and stays mounted on the host", async () => {
    expect(await hostHasNetnsMount()).toBe(true);
    const { proc, ipc } = await f.start(runtime, path.join(f.dir, "netns.log"));
    const before = await ipc.request({ cmd: "state" });
    await runtime.checkpoint(proc, path.join(f.scratch, "netns"));
    expect(await proc.exited).toEqual({ code: null, signal: "SIGKILL" });
    const other = await createProcessRuntime();
    const restored = f.track(await other.restore(path.join(f.scratch, "netns"), { cwd: f.dir }));
    const ipc2 = createIpcClient(restored.ipc);
    expect(await ipc2.request({ cmd: "state" })).toMatchObject({ random: before.random, count: 2, pid: before.pid });
    // And once more from the restored task, whose namespace CRIU rebuilt.
    await other.checkpoint(restored, path.join(f.scratch, "netns-2"));
    const again = f.track(await runtime.restore(path.join(f.scratch, "netns-2"), { cwd: f.dir }));
    const ipc3 = createIpcClient(again.ipc);
    expect(await ipc3.request({ cmd: "state" })).toMatchObject({ random: before.random, count: 3 });
    ipc3.send({ cmd: "exit", code: 0 });
    expect(await again.exited).toEqual({ code: 0, signal: null });
    expect(await hostHasNetnsMount()).toBe(true);
  });
});

describe.skipIf(!runtime.checkpoints.available)("the host's /dev/shm", () => {
  const marker = `/dev/shm/stasis-test-marker-${process.pid}`;
  afterAll(() => rm(marker, { force: true }));

  it("is shared with the task, not copied into its checkpoint, and files coming and going there do not fail a dump", async () => {
    await writeFile(marker, "host's shared memory");
    const { proc, ipc } = await f.start(runtime, path.join(f.dir, "shm.log"));
    const before = await ipc.request({ cmd: "state" });
    // Other programs' shared memory comes and goes meanwhile (PostgreSQL's segments do).
    const churn = spawn("sh", ["-c", `while :; do for i in 1 2 3 4 5 6 7 8; do echo x > /dev/shm/stasis-churn-$$-$i; rm -f /dev/shm/stasis-churn-$$-$i; done; done`], { stdio: "ignore", detached: true });
    try {
      await runtime.checkpoint(proc, path.join(f.scratch, "shm"));
    } finally {
      process.kill(-churn.pid!, "SIGKILL");
    }
    await execFile("sh", ["-c", "rm -f /dev/shm/stasis-churn-*"], () => {});
    const images = await readdir(path.join(f.scratch, "shm"));
    for (const image of images.filter((name) => name.startsWith("tmpfs-"))) {
      const raw = await readFile(path.join(f.scratch, "shm", image));
      const tar = image.includes(".gz") ? gunzipSync(raw) : raw; // CRIU stores tmpfs content as tar.gz
      expect(tar.includes(path.basename(marker)), image).toBe(false);
    }
    const restored = f.track(await runtime.restore(path.join(f.scratch, "shm"), { cwd: f.dir }));
    const ipc2 = createIpcClient(restored.ipc);
    expect(await ipc2.request({ cmd: "state" })).toMatchObject({ random: before.random, count: 2 });
    ipc2.send({ cmd: "exit", code: 0 });
    expect(await restored.exited).toEqual({ code: 0, signal: null });
  });
});

describe("mountsToDetach", () => {
  it("picks nsfs and FUSE mounts and runc/CRIU scratch mounts, deepest first, and leaves the rest", () => {
    const mountinfo = [
      "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
      "130 22 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw",
      "131 130 0:4 net:[4026532185] /run/netns/cni-1 rw shared:2 - nsfs nsfs rw",
      "132 22 0:4 net:[4026532186] /run/docker/netns/ab\\040c rw - nsfs nsfs rw",
      "133 22 0:50 / /run/runc/x/rootfs rw - overlay overlay rw",
      "134 22 0:51 / /tmp/.criu.mntns.xyz rw - tmpfs none rw",
      "135 22 0:52 / /proc rw - proc proc rw",
      "136 135 0:53 /proc/cpuinfo /proc/cpuinfo rw - fuse.lxcfs lxcfs rw",
      "137 22 0:54 / /sys/fs/fuse/connections rw - fusectl fusectl rw",
    ].join("\n");
    expect(mountsToDetach(parseMountinfo(mountinfo))).toEqual(["/proc/cpuinfo", "/tmp/.criu.mntns.xyz", "/run/runc/x/rootfs", "/run/docker/netns/ab c", "/run/netns/cni-1"]);
  });
});
