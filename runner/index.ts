export { createRunner, type Runner, type RunnerOptions } from "./runner.ts";
export { createImageCache } from "./image-cache.ts";
export { createProcessRuntime, createRuncRuntime, createContainerRuntime, criuDumpsOtherUsers, detectRunc, type WorkloadRuntime, type TaskProcess } from "./workload/index.ts";
export { createDirCheckpointStore, createRegistryCheckpointStore, openCheckpointStore, classifyCheckpoints, totalsPerProject, runIdOfKey, CheckpointIntegrityError, type CheckpointStore, type StoredCheckpoint, type OpenedCheckpointStore } from "./checkpoint-store/index.ts";
export { startHealthServer, type HealthServerOptions } from "./health-server.ts";
export { canSandboxTasks, pathList, DEFAULT_TASK_UID_BASE, HOST_SECRET_PATHS, type TaskSandboxPolicy } from "./task-sandboxes.ts";
