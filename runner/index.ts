export { createRunner, type Runner, type RunnerOptions } from "./runner.ts";
export { createImageCache } from "./image-cache.ts";
export { createProcessRuntime, createRuncRuntime, detectRunc, type WorkloadRuntime, type TaskProcess } from "./workload/index.ts";
export { createDirCheckpointStore, createRegistryCheckpointStore, openCheckpointStore, classifyCheckpoints, totalsPerProject, runIdOfKey, CheckpointIntegrityError, type CheckpointStore, type StoredCheckpoint, type OpenedCheckpointStore } from "./checkpoint-store/index.ts";
export { startHealthServer, type HealthServerOptions } from "./health-server.ts";
