/**
 * What a task process may reach on the host, when the runner runs as root: it runs as `uid`
 * (no groups, no capabilities, no_new_privs) in its own mount namespace whose root is built from
 * nothing (task-root.sh): a tmpfs holding only
 * - the host's system dirs (/usr and the merged-/usr links), a few files of /etc and a passwd
 *   naming its user, read-only;
 * - its app dir and the paths in `expose` (Node's dir, when outside /usr), read-only, at their own path;
 * - the paths in `shared` (volumes the operator shares with tasks), read-write at their own path;
 * - /proc of its own PID namespace, a minimal /dev, and its own /tmp and /dev/shm (tmpfs; dumped
 *   into its checkpoints, so what it wrote there is back after a restore on any runner) — HOME and
 *   TMPDIR point to /tmp.
 * Paths in `hide` stay out even when they lie inside something bound (an empty read-only tmpfs;
 * /dev/null over a file). Nothing else of the host is in its namespace: no other mount, so CRIU
 * dumps it whatever the host has mounted.
 */
export interface TaskSandbox {
  uid: number;
  gid: number;
  expose: string[];
  hide: string[];
  shared: string[];
  /** Size of the private /tmp and /dev/shm in MB each (default 256). */
  tmpMb?: number;
}

/** Where the task finds its home and temp dir inside the sandbox. */
export const SANDBOX_TMP = "/tmp";
