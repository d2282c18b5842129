// Entry point the builder's generated bundle entry imports; not part of the public `stasis/sdk`.
// (Index mode loads ./worker/index-tasks.ts itself, lazily: a process that runs tasks never loads it.)
export { startWorker } from "./worker/start-worker.ts";
export type { TaskModule, IndexDefaults } from "./worker/index-tasks.ts";
