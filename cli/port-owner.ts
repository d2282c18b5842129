import { readFileSync, readdirSync, readlinkSync } from "node:fs";

/** The process listening on a TCP port of this host, from /proc (null when it cannot be told). */
export function portOwner(port: number): { pid: number; command: string } | null {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // fields: sl local_address rem_address st … inode (index 9); st 0A is LISTEN
      if (fields.length < 10 || fields[3] !== "0A") continue;
      if (Number.parseInt(fields[1].split(":")[1] ?? "", 16) === port) inodes.add(fields[9]);
    }
  }
  if (inodes.size === 0) return null;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${entry}/fd/${fd}`);
      } catch {
        continue;
      }
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (match && inodes.has(match[1])) {
        let command = "";
        try {
          command = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
        } catch {}
        return { pid: Number(entry), command };
      }
    }
  }
  return null;
}

/** The message for a port another process holds: which one, and what to do. */
export function portTakenMessage(host: string, port: number): string {
  const owner = portOwner(port);
  const by = owner ? ` by pid ${owner.pid}${owner.command ? ` (${owner.command.slice(0, 120)})` : ""}` : "";
  return `port ${port} on ${host} is already in use${by}; choose another with --port (0 picks a free one)`;
}
