import { MACHINE_PRESETS, ProcessKeepAlive, resolveKeepAlive, RetryOptions, type TaskManifestEntry } from "../../schemas/index.ts";
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
        ...(processKeepAlive ? { processKeepAlive } : {}),
        ...(value.startsOn ?? {}),
      });
    }
  }
  return entries;
}
