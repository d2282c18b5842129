import type { RetryOptions, RunContext, ScheduleTrigger, TriggerOptions, TriggerResponse, WebhookTrigger } from "../schemas/index.ts";
import { apiRequest } from "./api-client.ts";
import { registerTask } from "./registry.ts";
import { toTaskRunResult, type TaskRunResult } from "./result.ts";
import { getRunRuntime } from "./run-runtime.ts";
import { waitForResult } from "./wait.ts";

export interface TaskRunArgs {
  ctx: RunContext;
  /** Aborted when the run is canceled or exceeds maxDuration. */
  signal: AbortSignal;
}

export interface TaskOptions<TPayload, TOutput> {
  id: string;
  retry?: Partial<RetryOptions>;
  machine?: { preset?: string; cpu?: number; memory?: number };
  queue?: { name?: string; concurrencyLimit?: number };
  /** Seconds of execution after which the run is TIMED_OUT. */
  maxDuration?: number;
  /**
   * Safety checkpoints: while the run runs, checkpoint it in the background this often ("10m", ms), so
   * a host that dies loses at most that much work. Code since the last checkpoint runs again after such
   * a loss (at least once for that span); each checkpoint pauses the run for the length of a dump.
   */
  checkpoint?: { every: string | number };
  /**
   * Opt-in: a process that completed a run of this task may take the next run of the same version
   * and environment instead of exiting, up to `maxRuns` runs (default 50). Module state, globals and
   * timers carry over between those runs (README "Process reuse"). Overrides the config's default.
   */
  processKeepAlive?: boolean | { maxRuns?: number };
  run: (payload: TPayload, args: TaskRunArgs) => Promise<TOutput>;
}

/** What starts a task besides the API (set by `webhooks.*().task` and `schedules.task`); indexed into the manifest. */
export type TaskTrigger = { webhook: WebhookTrigger } | { schedule: ScheduleTrigger };

export interface TaskDefinition<TPayload, TOutput> {
  readonly __stasisTask: true;
  readonly id: string;
  readonly options: TaskOptions<TPayload, TOutput>;
  readonly startsOn?: TaskTrigger;
  trigger(payload: TPayload, options?: TriggerOptions): Promise<TriggerResponse>;
  batchTrigger(items: Array<{ payload: TPayload; options?: TriggerOptions }>): Promise<TriggerResponse[]>;
  /** Inside a run only: starts a child run on this run's version and waits for it, suspended. */
  triggerAndWait(payload: TPayload, options?: TriggerOptions): Promise<TaskRunResult<TOutput>>;
  /** Inside a run only: starts child runs and waits for all; results come in item order. */
  batchTriggerAndWait(items: Array<{ payload: TPayload; options?: TriggerOptions }>): Promise<Array<TaskRunResult<TOutput>>>;
}

/** Defines a task. Export it from a file in a `trigger/` directory. */
export function task<TPayload = unknown, TOutput = unknown>(options: TaskOptions<TPayload, TOutput>): TaskDefinition<TPayload, TOutput> {
  return defineTask(options);
}

/** `task()` with a trigger: what webhook sources and schedules build on. */
export function defineTask<TPayload, TOutput>(options: TaskOptions<TPayload, TOutput>, trigger?: TaskTrigger): TaskDefinition<TPayload, TOutput> {
  const definition: TaskDefinition<TPayload, TOutput> = {
    __stasisTask: true,
    id: options.id,
    options,
    ...(trigger ? { startsOn: trigger } : {}),
    async trigger(payload, triggerOptions) {
      const [handle] = await triggerMany([{ task: options.id, payload, options: triggerOptions }]);
      return handle;
    },
    batchTrigger(items) {
      return triggerMany(items.map((item) => ({ task: options.id, payload: item.payload, options: item.options })));
    },
    async triggerAndWait(payload, triggerOptions) {
      const [result] = await triggerAndWaitMany<TOutput>([{ task: options.id, payload, options: triggerOptions }]);
      return result;
    },
    batchTriggerAndWait(items) {
      return triggerAndWaitMany<TOutput>(items.map((item) => ({ task: options.id, payload: item.payload, options: item.options })));
    },
  };
  registerTask(definition);
  return definition;
}

type TriggerItem = { task: string; payload: unknown; options?: TriggerOptions };

/** Each item's default idempotency key: `<run id>/<place>/<item index>` (a key the caller gave wins). */
function withPlaceKeys(items: TriggerItem[], runId: string, place: string): TriggerItem[] {
  return items.map((item, i) => ({ ...item, options: { ...item.options, idempotencyKey: item.options?.idempotencyKey ?? `${runId}/${place}/${i}` } }));
}

/** Inside a run, children go through the runner (and inherit its version); outside, through the HTTP API. */
async function triggerMany(items: TriggerItem[]): Promise<TriggerResponse[]> {
  const runtime = getRunRuntime();
  if (runtime) {
    // Keyed by its place among the run's triggers, like a wait: an attempt that runs this code again
    // (after its runner died, or a retry) gets the children the earlier attempt started.
    const keyed = withPlaceKeys(items, runtime.ctx.runId, runtime.nextTriggerKey());
    const { runIds } = (await runtime.call({ method: "trigger", items: keyed, wait: false })) as { runIds: string[] };
    return runIds.map((id) => ({ id, isCached: false }));
  }
  if (items.length === 1) {
    const [item] = items;
    return [await apiRequest<TriggerResponse>("POST", `/api/v1/tasks/${encodeURIComponent(item.task)}/trigger`, { payload: item.payload ?? null, options: item.options })];
  }
  const { runs } = await apiRequest<{ runs: TriggerResponse[] }>("POST", "/api/v1/tasks/batch", { items });
  return runs;
}

async function triggerAndWaitMany<TOutput>(items: TriggerItem[]): Promise<Array<TaskRunResult<TOutput>>> {
  const runtime = getRunRuntime();
  if (!runtime) throw new Error("triggerAndWait and batchTriggerAndWait can only be called inside a task's run(); use trigger() and runs.poll() from app code");
  // One place in the run for the trigger and its wait. The children's default idempotency keys come
  // from it, so an attempt that runs this code again gets the same child runs (and their results).
  const key = runtime.nextWaitKey();
  const keyed = withPlaceKeys(items, runtime.ctx.runId, key);
  const { runIds } = (await runtime.call({ method: "trigger", items: keyed, wait: true })) as { runIds: string[] };
  const result = await waitForResult({ kind: "runs", runIds }, key);
  if (result.kind !== "runs") throw new Error(`expected child run results, got a ${result.kind} result`);
  const byId = new Map(result.results.map((r) => [r.runId, r]));
  return runIds.map((id) => toTaskRunResult<TOutput>(byId.get(id)!));
}

/** Trigger any task by id, from app code or inside a run. */
export const tasks = {
  async trigger<TPayload = unknown>(taskId: string, payload: TPayload, options?: TriggerOptions): Promise<TriggerResponse> {
    const [handle] = await triggerMany([{ task: taskId, payload, options }]);
    return handle;
  },
  batchTrigger(items: TriggerItem[]): Promise<TriggerResponse[]> {
    return triggerMany(items);
  },
};
