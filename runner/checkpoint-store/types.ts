/** Where suspended runs' checkpoints (CRIU image dirs) live so that any runner can resume them. */
export interface CheckpointStore {
  /**
   * Stores a copy of `imageDir` under `key` (`a-z A-Z 0-9 . _ -` segments joined by `/`). Aborting
   * `signal` stops the copy (nothing is left under `key`) and rejects.
   */
  put(key: string, imageDir: string, signal?: AbortSignal): Promise<{ location: string; sizeBytes: number }>;
  /** Unpacks the checkpoint at `location` into `destDir` (created when missing). */
  get(location: string, destDir: string): Promise<void>;
  /** Removes the checkpoint; deleting one that is already gone is fine. */
  delete(location: string): Promise<void>;
}
