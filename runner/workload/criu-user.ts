import { lstatSync, mkdirSync, readFileSync, statfsSync } from "node:fs";
import path from "node:path";

export interface TaskUser {
  uid: number;
  gid: number;
}

/** Capability names by number (capabilities(7)), for setpriv's lists. */
const CAPS = ["chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore"];
const CAP_SYS_RESOURCE = 24;

function capSet(field: "CapEff" | "CapBnd"): bigint {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith(`${field}:`));
  return BigInt(`0x${line?.split(":")[1]?.trim() ?? "0"}`);
}

let held: bigint | undefined;

/** The runner may read other users' rlimits (CAP_SYS_RESOURCE): a root criu can dump their processes. */
export function criuDumpsOtherUsers(): boolean {
  held ??= capSet("CapEff") & capSet("CapBnd");
  return (held & (1n << BigInt(CAP_SYS_RESOURCE))) !== 0n;
}

/** The whole `criu args…` command line for a task of `user` (see criuAsTaskUser). */
export function criuCommand(criuPath: string, args: string[], user?: TaskUser): string[] {
  const as = criuAsTaskUser(user);
  return [...as.prefix, criuPath, ...args, ...as.flags];
}

/**
 * How `criu` must run to dump or restore a task of another user. CRIU reads each task's rlimits with
 * prlimit(2), which the kernel allows across users only with CAP_SYS_RESOURCE. Where the runner has
 * it (root on a host, a privileged pod) criu runs as root as always: `[]`. Where it does not (root
 * in a container that dropped it, as on our CI machine) criu runs as the task's own user — prlimit
 * needs no capability then — keeping every other capability the runner holds as ambient ones, in
 * CRIU's `--unprivileged` mode (it refuses a non-root uid otherwise): the prefix for that, and the
 * extra criu flag. The user the task runs as never holds these: they live only in the criu process.
 * Such a criu finds its kernel-probe cache through the environment it runs in (criuEnvironment).
 */
export function criuAsTaskUser(user: TaskUser | undefined): { prefix: string[]; flags: string[] } {
  if (!user || criuDumpsOtherUsers()) return { prefix: [], flags: [] };
  const caps = CAPS.filter((_, i) => held! & (1n << BigInt(i))).map((name) => `+${name}`).join(",");
  const keep = ["--inh-caps", `-all,${caps}`, "--ambient-caps", `-all,${caps}`];
  return { prefix: ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", ...keep, "--"], flags: ["--unprivileged"] };
}

/**
 * What criu commands run with, in their environment: an unprivileged criu's cache dir (criuRuntimeDir)
 * as XDG_RUNTIME_DIR; a root criu does not read it. Given to the process that execs criu (a guard, at
 * its start), not set by an `env` in criu's command line: one exec fewer per dump (~3–4 ms on a 2-core
 * VM, bench/suspend-resume, twentieth round).
 */
export function criuEnvironment(runtimeDir: string): NodeJS.ProcessEnv {
  return { ...process.env, XDG_RUNTIME_DIR: runtimeDir };
}

/** Shared by every runner of the host: what criu learns of the kernel is the same for all. */
export const SHARED_CRIU_RUNTIME_DIR = "/dev/shm/stasis-criu-run";
const TMPFS_MAGIC = 0x01021994;

/**
 * The dir a criu run as the task's user (`--unprivileged`) keeps its kernel-probe cache in (its
 * XDG_RUNTIME_DIR). CRIU writes that cache only on a tmpfs (so that it goes with a reboot), and
 * without it probes the kernel on every call (~35 ms here: bench/suspend-resume, eighteenth round),
 * so it is a root-only dir in /dev/shm when one can be had: made here (0700, ours), or found so.
 * A dir there that is anyone else's, open to others, a symlink or not a tmpfs is left alone:
 * `<workDir>/criu-run` then, where criu probes each time.
 */
export function criuRuntimeDir(workDir: string, shared = SHARED_CRIU_RUNTIME_DIR): string {
  if (ownTmpfsDir(shared)) return shared;
  const own = path.join(workDir, "criu-run");
  mkdirSync(own, { recursive: true, mode: 0o700 });
  return own;
}

const checked = new Map<string, boolean>();
function ownTmpfsDir(dir: string): boolean {
  let ok = checked.get(dir);
  if (ok !== undefined) return ok;
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") return false;
  }
  try {
    const st = lstatSync(dir);
    ok = st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o777) === 0o700 && statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    ok = false;
  }
  checked.set(dir, ok);
  return ok;
}
