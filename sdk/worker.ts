// Entry point the builder's generated bundle entry imports; not part of the public `stasis/sdk`.
export { startWorker } from "./worker/start-worker.ts";
export { indexTasks, type TaskModule, type IndexDefaults } from "./worker/index-tasks.ts";
