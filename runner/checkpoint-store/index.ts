export type { CheckpointStore, CheckpointSeal, CheckpointExpectation, StoredCheckpoint } from "./types.ts";
export { createDirCheckpointStore } from "./dir-store.ts";
export { createRegistryCheckpointStore, CHECKPOINT_ARTIFACT_TYPE, type RegistryCheckpointStoreOptions, type RegistryTransferStats } from "./registry-store.ts";
export { CheckpointIntegrityError, CheckpointStoreError, type CheckpointStoreErrorCode } from "./errors.ts";
export { CHECKPOINT_KEY_BYTES } from "./sealed-stream.ts";
export { openCheckpointStore, type CheckpointStoreKind, type OpenCheckpointStoreOptions, type OpenedCheckpointStore } from "./open-checkpoint-store.ts";
export { classifyCheckpoints, totalsPerProject, runIdOfKey } from "./plan-gc.ts";
