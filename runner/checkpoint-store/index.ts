export type { CheckpointStore, CheckpointSeal, CheckpointExpectation } from "./types.ts";
export { createDirCheckpointStore } from "./dir-store.ts";
export { CheckpointIntegrityError, CheckpointStoreError, type CheckpointStoreErrorCode } from "./errors.ts";
export { CHECKPOINT_KEY_BYTES } from "./sealed-stream.ts";
