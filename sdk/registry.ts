import type { TaskDefinition } from "./task.ts";

/** Every `task()` defined in this process, by id. The worker runtime reads it. */
const tasks = new Map<string, TaskDefinition<any, any>>();

export function registerTask(definition: TaskDefinition<any, any>): void {
  tasks.set(definition.id, definition);
}

export function getTask(id: string): TaskDefinition<any, any> | undefined {
  return tasks.get(id);
}

export function isTaskDefinition(value: unknown): value is TaskDefinition<any, any> {
  return typeof value === "object" && value !== null && (value as { __stasisTask?: unknown }).__stasisTask === true;
}
