export { createRunner, type Runner, type RunnerOptions } from "./runner.ts";
export { createImageCache } from "./image-cache.ts";
export { createProcessRuntime, createRuncRuntime, criuDumpsOtherUsers, detectRunc, type WorkloadRuntime, type TaskProcess } from "./workload/index.ts";
export { createDirCheckpointStore, CheckpointIntegrityError, type CheckpointStore } from "./checkpoint-store/index.ts";
export { canSandboxTasks, pathList, DEFAULT_TASK_UID_BASE, HOST_SECRET_PATHS, type TaskSandboxPolicy } from "./task-sandboxes.ts";
