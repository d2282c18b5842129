// What the SDK's task process reads at start: nothing here builds a zod schema (see sdk/worker/ipc-channel.ts).

/**
 * The call id of a `reply` to no call: the first message a process restored from a checkpoint of a
 * running run gets (there is no wait to hand a result to). A worker takes it as "you were restored"
 * (fresh randomness); older workers ignore a reply nobody waits for.
 */
export const RESTORED_NOTICE_CALL_ID = -1;

/** Every `type` of a message from the runner to a task process (`RunnerToTask` in ipc.ts). */
export const RUNNER_TO_TASK_TYPES = ["execute", "reply", "wait-result", "prepare-checkpoint", "cancel"] as const;
