/** What seals one checkpoint: its own random 256-bit key (the server keeps it wrapped by the project's data key). */
export interface CheckpointSeal {
  key: Buffer;
}

/** What a resume expects: the key, and the sha256 the server recorded when the checkpoint was reported. */
export interface CheckpointExpectation {
  key: Buffer;
  sha256: string;
}

/** One checkpoint as a store lists it (`stasis checkpoints list|gc`). */
export interface StoredCheckpoint {
  location: string;
  /** The key it was put under (`<run id>/<attempt>-<ms>`). */
  key: string;
  sizeBytes: number;
  /** When it was stored (ms since the epoch). */
  createdAt: number;
}

/** Where suspended runs' checkpoints (CRIU image dirs) live so that any runner can resume them. */
export interface CheckpointStore {
  /**
   * Stores a sealed copy of `imageDir` under `key` (`a-z A-Z 0-9 . _ -` segments joined by `/`):
   * encrypted with `seal.key` as it streams out (AES-256-GCM in chunks), never in clear at rest.
   * `sha256` is the digest of the stored bytes. Aborting `signal` stops the copy (nothing is left
   * under `key`) and rejects.
   */
  put(key: string, imageDir: string, seal: CheckpointSeal, signal?: AbortSignal): Promise<{ location: string; sizeBytes: number; sha256: string }>;
  /**
   * Unpacks the checkpoint at `location` into `destDir` (created when missing) — only after its
   * stored bytes hashed to `expect.sha256`; else rejects with a `CheckpointIntegrityError` and
   * writes nothing to `destDir`.
   */
  get(location: string, destDir: string, expect: CheckpointExpectation): Promise<void>;
  /** Removes the checkpoint; deleting one that is already gone is fine. */
  delete(location: string): Promise<void>;
  /** Every checkpoint the store holds (what `stasis checkpoints list` shows and `gc` reclaims). */
  list(): Promise<StoredCheckpoint[]>;
}
