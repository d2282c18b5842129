import { MACHINE_PRESETS, MIN_SAFETY_CHECKPOINT_MS, ProcessKeepAlive, resolveKeepAlive, RetryOptions, type TaskManifestEntry } from "../../schemas/index.ts";
import { durationToMs } from "../duration.ts";
import { isTaskDefinition } from "../registry.ts";

export interface TaskModule {
  filePath: string;
  exports: Record<string, unknown>;
}

/** Defaults from `stasis.config.ts` the builder hands to the index process. */
export interface IndexDefaults {
  retry?: Partial<RetryOptions>;
  machine?: { preset?: string; cpu?: number; memory?: number };
  maxDuration?: number;
  checkpoint?: { every: string | number };
  processKeepAlive?: ProcessKeepAlive;
}

/** Lists the tasks the bundle's modules export, with their settings resolved against the defaults. */
export function indexTasks(modules: TaskModule[], defaults: IndexDefaults = {}): TaskManifestEntry[] {
  const seen = new Map<string, string>();
  const entries: TaskManifestEntry[] = [];
  for (const { filePath, exports } of modules) {
    for (const [exportName, value] of Object.entries(exports)) {
      if (!isTaskDefinition(value)) continue;
      const where = `${filePath}#${exportName}`;
      const earlier = seen.get(value.id);
      if (earlier) throw new Error(`task id "${value.id}" is defined twice: ${earlier} and ${where}`);
      seen.set(value.id, where);
      const options = value.options;
      const machineInput = { ...defaults.machine, ...options.machine };
      const presetName = (machineInput.preset ?? "small-1x") as keyof typeof MACHINE_PRESETS;
      const preset = MACHINE_PRESETS[presetName];
      if (!preset) throw new Error(`task "${value.id}" (${where}): unknown machine preset "${presetName}"; use one of ${Object.keys(MACHINE_PRESETS).join(", ")}`);
      const retry = RetryOptions.safeParse({ ...defaults.retry, ...options.retry });
      if (!retry.success) throw new Error(`task "${value.id}" (${where}): retry: ${retry.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      const maxDuration = options.maxDuration ?? defaults.maxDuration;
      const every = options.checkpoint?.every ?? defaults.checkpoint?.every;
      let everyMs: number | undefined;
      if (every !== undefined) {
        try {
          everyMs = durationToMs(every);
        } catch (error) {
          throw new Error(`task "${value.id}" (${where}): checkpoint.every: ${(error as Error).message}`);
        }
        if (everyMs < MIN_SAFETY_CHECKPOINT_MS) throw new Error(`task "${value.id}" (${where}): checkpoint.every must be at least ${MIN_SAFETY_CHECKPOINT_MS} ms`);
      }
      const keepAliveInput = ProcessKeepAlive.optional().safeParse(options.processKeepAlive);
      if (!keepAliveInput.success) throw new Error(`task "${value.id}" (${where}): processKeepAlive: ${keepAliveInput.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      const processKeepAlive = resolveKeepAlive(keepAliveInput.data, defaults.processKeepAlive);
      entries.push({
        id: value.id,
        filePath,
        exportName,
        retry: retry.data,
        machine: { preset: presetName, cpu: machineInput.cpu ?? preset.cpu, memory: machineInput.memory ?? preset.memory },
        queue: { name: options.queue?.name ?? `task/${value.id}`, ...(options.queue?.concurrencyLimit ? { concurrencyLimit: options.queue.concurrencyLimit } : {}) },
        ...(maxDuration ? { maxDuration } : {}),
        ...(everyMs ? { checkpoint: { everyMs } } : {}),
        ...(processKeepAlive ? { processKeepAlive } : {}),
        ...(value.startsOn ?? {}),
      });
    }
  }
  return entries;
}
