import { realpath } from "node:fs/promises";
import path from "node:path";
import { unreachableAncestor, within, type SandboxMounts, type SandboxOp } from "../../builder/index.ts";

/**
 * What a task process may reach on the host, when the runner runs as root: it runs as `uid`
 * (no groups, no_new_privs) in its own mount namespace where
 * - `/tmp` is a private tmpfs of its own (dumped into its checkpoints, so what it wrote there is
 *   back after a restore on any runner) — HOME and TMPDIR point there;
 * - every path in `hide` is an empty read-only tmpfs (a file: /dev/null);
 * - the paths in `expose` (its app dir, Node, the files its flags name) and `shared` (volumes the
 *   operator shares with tasks, read-write) stay visible at their own path, also when an ancestor
 *   is hidden or cannot be entered by `uid` (that ancestor becomes an empty tmpfs holding them).
 * Everything else on the host is seen as the kernel lets `uid` see it: world-readable files only.
 */
export interface TaskSandbox {
  uid: number;
  gid: number;
  expose: string[];
  hide: string[];
  shared: string[];
  /** Size of the private /tmp in MB (default 256). */
  tmpMb?: number;
}

/** Where the task finds its home and temp dir inside the sandbox. */
export const SANDBOX_TMP = "/tmp";

const existing = async (paths: string[]): Promise<string[]> => {
  const out = new Set<string>();
  for (const p of paths) {
    const real = await realpath(path.resolve(p)).catch(() => null);
    if (real && real !== "/") out.add(real);
  }
  return [...out];
};

/**
 * The mounts of one task's sandbox (builder/sandbox/mount-script.ts does them): covers first,
 * parents before children (a path under an earlier cover is already out of sight), then the
 * exposed and shared paths bound back, then hides inside those.
 */
export async function taskSandboxMounts(sandbox: TaskSandbox, stage: string, cwd: string): Promise<SandboxMounts> {
  const expose = await existing([...sandbox.expose, ...sandbox.shared]);
  const hide = await existing(sandbox.hide);
  const covers: Array<{ path: string; op: SandboxOp }> = [{ path: SANDBOX_TMP, op: { op: "tmpfs", path: SANDBOX_TMP, options: `mode=1777,size=${sandbox.tmpMb ?? 256}m` } }];
  for (const p of expose) {
    const unreachable = await unreachableAncestor(p);
    if (unreachable) covers.push({ path: unreachable.ancestor, op: { op: "tmpfs", path: unreachable.ancestor, options: "mode=0755" } });
  }
  const after: SandboxOp[] = [];
  for (const p of hide) {
    // Inside an exposed path: hidden after it is bound back. Anything else (an ancestor of the app dir, such as the image cache) before.
    if (expose.some((e) => within(p, e) && p !== e)) after.push({ op: "hide", path: p });
    else if (!expose.some((e) => p === e)) covers.push({ path: p, op: { op: "hide", path: p } });
  }
  covers.sort((a, b) => a.path.length - b.path.length);
  const before: SandboxOp[] = [];
  const covered: string[] = [];
  for (const c of covers) {
    if (covered.some((done) => within(c.path, done))) continue;
    before.push(c.op);
    covered.push(c.path);
  }
  // Only what something covers needs binding back.
  const needed = expose.filter((p) => covered.some((c) => within(p, c) && p !== c));
  return { stage, expose: needed, before, after, user: { uid: sandbox.uid, gid: sandbox.gid }, pdeathsig: "KILL", cwd: path.resolve(cwd) };
}
