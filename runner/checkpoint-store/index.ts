export type { CheckpointStore } from "./types.ts";
export { createDirCheckpointStore } from "./dir-store.ts";
export { CheckpointStoreError, type CheckpointStoreErrorCode } from "./errors.ts";
