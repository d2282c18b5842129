import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readsStdin } from "../../test/support/processes.ts";
import { waitFor } from "../../test/support/wait-for.ts";
import { guardedCriu, handAhead, handCommand, PREPARED, rootStandbyGuard, standbyGuard } from "./criu-guard.ts";

/** The pids below `pid` (children, grandchildren …), from /proc. */
async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const children = (await readFile(`/proc/${pid}/task/${tid}/children`, "utf8").catch(() => "")).trim();
    for (const child of children ? children.split(/\s+/).map(Number) : []) out.push(child, ...(await descendants(child)));
  }
  return out;
}

const alive = async (pid: number) => {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  return stat !== null && !/\) [ZX] /.test(stat);
};

const TOOLS = { setpriv: "setpriv", bash: "bash" };

// Where handCommand writes a guard's command file, as a dump's or a restore's own work dir.
let handDir = "";
beforeAll(async () => void (handDir = await mkdtemp(path.join(tmpdir(), "guard-hand-"))));
afterAll(() => rm(handDir, { recursive: true, force: true }));

/**
 * Guards `command` (handed to a guard started ahead, with `standby`), waits until `processes` run below it, sends SIGTERM: the guard exits 143 and none
 * of them is left. `runnerGone`: the guard's stderr is a pipe nobody reads any more, as when its runner died.
 */
async function termEndsTree(command: string[], processes: number, options: { runnerGone?: boolean; standby?: boolean } = {}): Promise<void> {
  const [file, args] = options.standby ? standbyGuard(TOOLS) : guardedCriu(TOOLS, command);
  const guard = spawn(file, args, { stdio: [options.standby ? "pipe" : "ignore", "ignore", options.runnerGone ? "pipe" : "ignore"] });
  if (options.standby) handCommand(guard, handDir, { cwd: "/", command });
  const exited = new Promise<number | null>((resolve) => guard.once("exit", (code) => resolve(code)));
  const tree = await waitFor("the whole tree to start", async () => {
    const pids = await descendants(guard.pid!);
    return pids.length >= processes ? pids : undefined;
  });
  guard.stderr?.destroy();
  guard.kill("SIGTERM");
  expect(await exited).toBe(143);
  await waitFor("every process of the tree to be gone", async () => (await Promise.all(tree.map(alive))).every((a) => !a));
}

describe("criu guard", () => {
  it("on SIGTERM, stops and kills every process below it, grandchildren included, and exits 143", async () => {
    // A stand-in for criu with a tree three levels deep (as criu → the restored namespace's init → the task).
    await termEndsTree(["bash", "-c", "bash -c 'sleep 300 & sleep 300 & wait' & bash -c 'sleep 300 & wait' & wait"], 6);
  });

  it("on SIGTERM, kills a PID namespace init below criu, and the namespace with it, before anything else", async () => {
    // As after a restore: criu's child is the init of the task's PID namespace (here `unshare`'s), the task below it.
    await termEndsTree(["unshare", "--pid", "--fork", "bash", "-c", "sleep 300 & sleep 300 & wait"], 4);
  });

  it("on SIGTERM with its runner gone (stderr a pipe nobody reads), still kills the whole tree while processes of it vanish mid-walk", async () => {
    // The namespace's processes die with its init while the walk reads /proc: a message about one of them on the dead
    // pipe killed the guard with SIGPIPE before its kill (it did in 25 of 30 tries), leaving the stand-in for criu stopped.
    for (let i = 0; i < 5; i++) await termEndsTree(["unshare", "--pid", "--fork", "bash", "-c", "for i in $(seq 20); do sleep 300 & done; wait"], 22, { runnerGone: true });
  });

  it("started ahead and handed its command, on SIGTERM it kills a PID namespace init below it and the whole tree, and exits 143", async () => {
    await termEndsTree(["unshare", "--pid", "--fork", "bash", "-c", "sleep 300 & sleep 300 & wait"], 4, { standby: true });
  });

  it("started ahead, runs the command it is handed in the dir it is handed, with the pipes it was started with, and exits with its status", async () => {
    const [file, args] = standbyGuard(TOOLS);
    const guard = spawn(file, args, { stdio: ["pipe", "pipe", "pipe", "pipe"] });
    const read = (i: number) => new Promise<string>((resolve) => {
      let text = "";
      (guard.stdio[i] as NodeJS.ReadableStream).setEncoding("utf8").on("data", (chunk: string) => (text += chunk)).on("end", () => resolve(text));
    });
    const [stdout, fd3] = [read(1), read(3)];
    const exited = new Promise((resolve) => guard.once("exit", resolve));
    // A field with spaces, quotes and a newline reaches the command as one argument.
    handCommand(guard, handDir, { cwd: "/tmp", command: ["bash", "-c", 'pwd; printf "%s|" "$1" >&3; read -t 1 x && echo "stdin not empty"; exit 5', "-", "a b 'c'\nd"] });
    expect(await exited).toBe(5);
    expect(await stdout).toBe("/tmp\n");
    expect(await fd3).toBe("a b 'c'\nd|");
  });

  it("started ahead, exits 0 running nothing when its stdin closes with no command, and 143 on SIGTERM while it waits", async () => {
    const [file, args] = standbyGuard(TOOLS);
    const unused = spawn(file, args, { stdio: ["pipe", "ignore", "ignore"] });
    unused.stdin!.end();
    expect(await new Promise((resolve) => unused.once("exit", resolve))).toBe(0);
    const waiting = spawn(file, args, { stdio: ["pipe", "ignore", "ignore"] });
    // Its trap is set before it reads: blocked in read(0, …) (syscall 0 on fd 0), a TERM is the runner giving up on it.
    await waitFor("the guard to wait on its stdin", async () => ((await readsStdin(waiting.pid!)) ? true : undefined));
    waiting.kill("SIGTERM");
    expect(await new Promise((resolve) => waiting.once("exit", (code, signal) => resolve(code ?? signal)))).toBe(143);
  });

  it.skipIf(process.getuid?.() !== 0)("for a sandboxed restore: waits in a mount namespace of its own, its root's and scratch's tmpfs mounted, then fills the root read-only and the task's /tmp and /dev/shm at the size handed, and runs the command there; a root it cannot mount ends it at once", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "root-guard-"));
    try {
      const [root, skeleton, scratch, saved] = ["root", "skeleton", "scratch", "saved"].map((name) => path.join(dir, name)) as [string, string, string, string];
      await mkdir(path.join(skeleton, "etc"), { recursive: true });
      await writeFile(path.join(skeleton, "etc", "marker"), "saved root\n");
      for (const d of ["tmp", "shm"]) {
        await mkdir(path.join(scratch, d), { recursive: true });
        await mkdir(path.join(saved, d), { recursive: true });
        await writeFile(path.join(saved, d, "file"), `saved ${d}\n`);
      }
      await mkdir(root);
      const archive = path.join(dir, "root.tar");
      const scratchArchive = path.join(dir, "scratch.tar");
      await new Promise((resolve) => spawn("tar", ["--create", "--file", archive, "--directory", skeleton, "."]).once("exit", resolve));
      await new Promise((resolve) => spawn("tar", ["--create", "--file", scratchArchive, "--directory", saved, "./tmp", "./shm"]).once("exit", resolve));
      const [file, args] = rootStandbyGuard(TOOLS, root, scratch, "4m", "owner-dir");
      const guard = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      guard.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
      await waitFor("the root guard to wait on its stdin", async () => ((await readsStdin(guard.pid!)) ? true : undefined));
      expect(await readlink(`/proc/${guard.pid}/ns/mnt`)).not.toBe(await readlink("/proc/self/ns/mnt"));
      // Nothing of it shows in this namespace: the root and scratch dirs here stay empty.
      expect(await readdir(root)).toEqual([]);
      const exited = new Promise((resolve) => guard.once("exit", resolve));
      const report = [
        "pwd",
        `cat ${root}/etc/marker ${scratch}/tmp/file ${scratch}/shm/file`,
        `touch ${root}/written 2>/dev/null || echo read-only`,
        `touch ${scratch}/tmp/written && echo tmp-writable`,
        // The task's /tmp: a tmpfs of the size handed (8m, not the 4m it was mounted with ahead).
        `grep -F " ${scratch}/tmp " /proc/self/mountinfo | grep -o "tmpfs stasis-tmp [^ ]*size=[0-9]*k"`,
        "exit 4",
      ].join("; ");
      // The checkpoint's part first, alone: the guard fills the root and scratch ahead of the restore and says so.
      handAhead(guard, [archive, scratchArchive, "8m"]);
      await waitFor("the root guard to have prepared the checkpoint's root", async () => (stdout === `${PREPARED}\n` ? true : undefined));
      expect(await readFile(`/proc/${guard.pid}/root${root}/etc/marker`, "utf8")).toBe("saved root\n");
      expect(await readFile(`/proc/${guard.pid}/root${scratch}/tmp/file`, "utf8")).toBe("saved tmp\n");
      expect(await readsStdin(guard.pid!)).toBe(true);
      handCommand(guard, handDir, { cwd: "/tmp", command: ["sh", "-c", report] });
      expect(await exited).toBe(4);
      expect(stdout).toMatch(/^prepared\n\/tmp\nsaved root\nsaved tmp\nsaved shm\nread-only\ntmp-writable\ntmpfs stasis-tmp .*size=8192k\n$/);
      expect(await readdir(root)).toEqual([]);
      expect(await readdir(path.join(scratch, "tmp"))).toEqual([]);

      const [noFile, noArgs] = rootStandbyGuard(TOOLS, path.join(dir, "missing"), scratch, "4m", "owner-dir");
      const unmountable = spawn(noFile, noArgs, { stdio: ["pipe", "ignore", "ignore"] });
      expect(await new Promise((resolve) => unmountable.once("exit", resolve))).toBe(125);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(process.getuid?.() !== 0)("started with a template root, fills it read-only before any part; a part with an empty root field keeps it, one with an archive gets a fresh root from that; with neither it exits 126", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "root-guard-template-"));
    try {
      const [root, scratch, saved] = ["root", "scratch", "saved"].map((name) => path.join(dir, name)) as [string, string, string];
      const archiveOf = async (name: string, marker: string) => {
        const skeleton = path.join(dir, `skeleton-${name}`);
        await mkdir(path.join(skeleton, "etc"), { recursive: true });
        await writeFile(path.join(skeleton, "etc", "marker"), marker);
        const archive = path.join(dir, `${name}.tar`);
        await new Promise((resolve) => spawn("tar", ["--create", "--file", archive, "--directory", skeleton, "."]).once("exit", resolve));
        return archive;
      };
      const template = await archiveOf("template", "template root\n");
      const other = await archiveOf("other", "other root\n");
      for (const d of ["tmp", "shm"]) {
        await mkdir(path.join(scratch, d), { recursive: true });
        await mkdir(path.join(saved, d), { recursive: true });
      }
      await mkdir(root);
      const scratchArchive = path.join(dir, "scratch.tar");
      await new Promise((resolve) => spawn("tar", ["--create", "--file", scratchArchive, "--directory", saved, "./tmp", "./shm"]).once("exit", resolve));
      const start = async (withTemplate: boolean) => {
        const [file, args] = rootStandbyGuard(TOOLS, root, scratch, "4m", "owner-dir", withTemplate ? template : undefined);
        const guard = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        guard.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        const exited = new Promise((resolve) => guard.once("exit", resolve));
        await waitFor("the root guard to wait on its stdin", async () => ((await readsStdin(guard.pid!)) ? true : undefined));
        return { guard, exited, stdout: () => stdout };
      };
      const rootOf = (pid: number) => readFile(`/proc/${pid}/root${root}/etc/marker`, "utf8");
      const report = [`cat ${root}/etc/marker`, `touch ${root}/written 2>/dev/null || echo read-only`, "exit 5"].join("; ");

      const keeps = await start(true);
      // Filled before it was handed anything, and read-only already.
      expect(await rootOf(keeps.guard.pid!)).toBe("template root\n");
      expect((await readFile(`/proc/${keeps.guard.pid}/mountinfo`, "utf8")).split("\n").find((line) => line.split(" ")[4] === root)).toMatch(/ ro,/);
      handAhead(keeps.guard, ["", scratchArchive, "8m"]);
      await waitFor("the guard to have prepared", async () => (keeps.stdout() === `${PREPARED}\n` ? true : undefined));
      handCommand(keeps.guard, handDir, { cwd: "/tmp", command: ["sh", "-c", report] });
      expect(await keeps.exited).toBe(5);
      expect(keeps.stdout()).toBe(`${PREPARED}\ntemplate root\nread-only\n`);

      const replaces = await start(true);
      handAhead(replaces.guard, [other, scratchArchive, "8m"]);
      await waitFor("the guard to have prepared", async () => (replaces.stdout() === `${PREPARED}\n` ? true : undefined));
      // Only the other root's files: a fresh tmpfs, not the template's with the other archive over it.
      expect(await readdir(`/proc/${replaces.guard.pid}/root${root}/etc`)).toEqual(["marker"]);
      handCommand(replaces.guard, handDir, { cwd: "/tmp", command: ["sh", "-c", report] });
      expect(await replaces.exited).toBe(5);
      expect(replaces.stdout()).toBe(`${PREPARED}\nother root\nread-only\n`);

      const neither = await start(false);
      handAhead(neither.guard, ["", scratchArchive, "8m"]);
      expect(await neither.exited).toBe(126);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a command with a NUL byte, writing nothing", async () => {
    const written: string[] = [];
    const stdin = { on: () => stdin, end: (chunk?: string) => void (chunk === undefined || written.push(chunk)) } as unknown as NodeJS.WritableStream;
    const dir = path.join(handDir, "refused");
    await mkdir(dir);
    expect(() => handCommand({ stdin }, dir, { cwd: "/", command: ["criu", "restore\0--evil"] })).toThrow(/NUL byte/);
    expect(written).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
  });

  it("runs a shell command beside its command, both at once, and exits when both have ended: with the command's status, or 125 when only the one beside failed", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "guard-beside-"));
    try {
      // Each side waits for the other's file: run one after the other, neither would end.
      const [a, b] = [path.join(dir, "a"), path.join(dir, "b")];
      const meet = (mine: string, theirs: string, then: string) => `: > ${mine}; while [ ! -e ${theirs} ]; do sleep 0.01; done; ${then}`;
      const exitOf = (guard: ReturnType<typeof spawn>) => new Promise((resolve) => guard.once("exit", resolve));
      // The side beside ends last, 0.2 s after the command, and leaves a file then: the guard's exit finds it there.
      const late = (guard: string) => path.join(dir, `late-${guard}`);
      for (const [beside, main, status] of [[(guard: string) => `sleep 0.2; : > ${late(guard)}`, "exit 0", 0], [() => "exit 3", "exit 0", 125], [() => "exit 0", "exit 6", 6]] as const) {
        for (const file of [a, b, late("spawned"), late("waiting")]) await rm(file, { force: true });
        const spawned = spawn(...guardedCriu(TOOLS, ["sh", "-c", meet(a, b, main)], meet(b, a, beside("spawned"))), { stdio: "ignore" });
        const waiting = spawn(...standbyGuard(TOOLS), { stdio: ["pipe", "ignore", "ignore"] });
        handCommand(waiting, handDir, { cwd: "/", command: ["sh", "-c", `while [ ! -e ${a} ]; do sleep 0.01; done; ${main}`], beside: `: > ${b}; ${beside("waiting")}` });
        const exits = [exitOf(spawned).then((code) => [code, existsSync(late("spawned"))]), exitOf(waiting).then((code) => [code, existsSync(late("waiting"))])];
        const lateLeft = status === 0; // only the first side beside leaves one
        expect(await Promise.all(exits)).toEqual([[status, lateLeft], [status, lateLeft]]);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("without a signal, exits with the command's own status", async () => {
    const [file, args] = guardedCriu(TOOLS, ["bash", "-c", "exit 7"]);
    const guard = spawn(file, args, { stdio: "ignore" });
    expect(await new Promise((resolve) => guard.once("exit", resolve))).toBe(7);
  });

  // Node's pipes are sockets, and a bash whose stdin is a socket takes itself for an rsh command and sources ~/.bashrc
  // when SHLVL < 2 — as under a runner started by systemd or a container's entrypoint. A .bashrc running `pyenv init`
  // in every guard left a chaos run's whole process group stopped.
  it("never runs the host's ~/.bashrc, with its stdin a socket and no shell above it", async () => {
    const home = await mkdtemp(path.join(tmpdir(), "guard-home-"));
    try {
      const marker = path.join(home, "bashrc-ran");
      await writeFile(path.join(home, ".bashrc"), `touch '${marker}'\n`);
      const env = { PATH: process.env.PATH!, HOME: home, SHLVL: "0" };
      const ran = async (file: string, args: string[], command?: string[]) => {
        const guard = spawn(file, args, { stdio: ["pipe", "ignore", "ignore"], env });
        if (command) handCommand(guard, handDir, { cwd: "/", command });
        else guard.stdin!.end();
        return new Promise((resolve) => guard.once("exit", resolve));
      };
      expect(await ran(...guardedCriu(TOOLS, ["bash", "--norc", "-c", "exit 5"]))).toBe(5);
      expect(await ran(...standbyGuard(TOOLS), ["bash", "--norc", "-c", "exit 6"])).toBe(6);
      expect(existsSync(marker)).toBe(false);
      // The same bash without the guard's flags does run it here: the test would see a guard that did.
      expect(await ran("bash", ["-c", "exit 0"])).toBe(0);
      expect(existsSync(marker)).toBe(true);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
