import { rm } from "node:fs/promises";

/**
 * Uncompressed copies of the checkpoints this runner took, by store location, so that when the same
 * runner claims the resume it restores straight from disk instead of fetching and unpacking the
 * compressed copy. The store's copy stays the source of truth (any runner can resume from it); only
 * the newest `limit` copies are kept.
 */
export function createLocalCheckpoints(limit = 8) {
  const dirs = new Map<string, string>();
  return {
    keep(location: string, dir: string): void {
      dirs.set(location, dir);
      while (dirs.size > limit) {
        const [oldest, oldDir] = dirs.entries().next().value as [string, string];
        dirs.delete(oldest);
        void rm(oldDir, { recursive: true, force: true }).catch(() => {});
      }
    },
    /** The local copy for this location, handed over to the caller (who removes it when done). */
    take(location: string): string | null {
      const dir = dirs.get(location) ?? null;
      dirs.delete(location);
      return dir;
    },
    async forget(location: string): Promise<void> {
      const dir = dirs.get(location);
      dirs.delete(location);
      if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
}

export type LocalCheckpoints = ReturnType<typeof createLocalCheckpoints>;
