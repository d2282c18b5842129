export type { CheckpointOptions, CheckpointResult, MachineLimits, CheckpointSupport, RestoreTaskOptions, StartTaskOptions, TaskExit, TaskProcess, WorkloadRuntime } from "./types.ts";
export { createProcessRuntime, type ProcessRuntimeOptions } from "./process-runtime.ts";
export { createRuncRuntime, detectRunc, type RuncRuntimeOptions } from "./runc-runtime.ts";
export { WorkloadError, type WorkloadErrorCode } from "./errors.ts";
export { CHECKPOINT_META_FILE } from "./checkpoint-meta.ts";
export { criuDumpsOtherUsers } from "./criu-user.ts";
export { createContainerRuntime, containerSocket, type ContainerRuntimeOptions } from "./container-runtime.ts";
