import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

const SUFFIX = ".root.tar";

/**
 * A tar archive's content, as a sha256: every header with its mtime and checksum fields zeroed, and
 * every member's data. Two roots built alike at different times (task-root.sh copies and makes their
 * files as each task starts) differ in their archives' bytes only there.
 */
export function rootContentKey(archive: Buffer): string {
  const hash = createHash("sha256");
  let at = 0;
  while (at + 512 <= archive.length) {
    const header = Buffer.from(archive.subarray(at, at + 512));
    if (header.every((byte) => byte === 0)) break;
    const size = parseInt(header.subarray(124, 136).toString("latin1").replace(/\0.*$/, "").trim() || "0", 8);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error("not a tar archive this reads: a member's size is not octal");
    header.fill(0, 136, 156); // mtime (136–147) and checksum (148–155)
    hash.update(header);
    hash.update(archive.subarray(at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return hash.digest("hex");
}

/**
 * The root archives (task-root.ts ROOT_ARCHIVE) of a runtime's latest sandboxed checkpoints, kept in
 * `dir` under their content key (`rootContentKey`). A root standby guard started after one fills its
 * root from the newest ahead (criu-guard.ts ROOT_STANDBY_GUARD): the next restore of a task of the same
 * sandbox and app, whose root holds the same files, skips the `tar` and the read-only remount of its
 * root on its critical path (the restores not prepared at their dump: another runner's, a fetched
 * copy's — bench/suspend-resume, twenty-third round). Its root's files then carry the template's
 * modification times, those of another task's start. The root holds no secret: dirs, /dev nodes,
 * copies of /etc files, a passwd naming the task's user, and the mount points of what is bound.
 */
export interface RootTemplates {
  /**
   * Notes the root archive of a checkpoint just taken or restored here: it becomes the newest template.
   * Returns its content key (for `rootArchiveField`), or undefined when it cannot be read as one.
   */
  note(archive: string): string | undefined;
  /** The newest template's path, for the next root standby guard; undefined: none yet. */
  newest(): string | undefined;
}

export function createRootTemplates(dir: string, keep = 3): RootTemplates {
  /** Content keys, oldest first. A guard starting reads the newest; the older ones stay a while for guards starting meanwhile. */
  const kept: string[] = [];
  const fileOf = (key: string) => path.join(dir, key + SUFFIX);
  return {
    note(archive) {
      let data: Buffer;
      let key: string;
      try {
        // Synchronous: a ~160 KB file, read once per checkpoint.
        data = readFileSync(archive);
        key = rootContentKey(data);
      } catch {
        return undefined; // no template from it: the next restore fills its root as it would without one
      }
      if (kept.at(-1) === key) return key;
      const at = kept.indexOf(key);
      if (at >= 0) kept.splice(at, 1);
      else {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileSync(fileOf(key), data, { mode: 0o600 });
      }
      kept.push(key);
      while (kept.length > keep) rmSync(fileOf(kept.shift()!), { force: true });
      return key;
    },
    newest() {
      const key = kept.at(-1);
      return key ? fileOf(key) : undefined;
    },
  };
}

/**
 * The root archive field of the part handed to a root standby `guard`: "" when the guard filled its
 * root ahead from a template whose content key is `key` (the checkpoint's root archive's, from `note`:
 * it keeps that root), else `archive`.
 */
export function rootArchiveField(guard: ChildProcess, archive: string, key: string | undefined): string {
  const template = guard.spawnargs.at(-1) ?? "";
  return key !== undefined && template.endsWith(SUFFIX) && path.basename(template, SUFFIX) === key ? "" : archive;
}
