import { MACHINE_PRESETS, ProcessKeepAlive, resolveKeepAlive, RetryOptions } from "../../schemas/common.ts";
import { MIN_SAFETY_CHECKPOINT_MS, type TaskManifestEntry } from "../../schemas/manifest.ts";
import { HttpWebhookOptions, SecretVariableName, WebhookSourceId } from "../../schemas/triggers.ts";
import { durationToMs } from "../duration.ts";
import { isTaskDefinition } from "../registry.ts";
import type { TaskTrigger } from "../task.ts";

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

function checked<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } } }, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new Error(`${what}${issue.path.length ? `.${issue.path.map(String).join(".")}` : ""}: ${issue.message}`);
  }
  return result.data;
}

/** A webhook task's source as `webhooks.*()` was given it (sdk/webhooks.ts checks nothing), checked here at the build. */
function checkedTrigger(trigger: TaskTrigger | undefined): TaskTrigger | undefined {
  if (!trigger || !("webhook" in trigger)) return trigger;
  const webhook = trigger.webhook;
  const http = webhook.http === undefined ? undefined : checked(HttpWebhookOptions, webhook.http, `webhooks.http({ id: "${String(webhook.source)}" })`);
  const source = checked(WebhookSourceId, webhook.source, `webhooks.${webhook.provider}({ id })`);
  const secretEnv = checked(SecretVariableName, webhook.secretEnv, `webhooks.${webhook.provider}({ id: "${source}", secretEnv })`);
  return { webhook: { ...webhook, source, secretEnv, ...(http ? { http } : {}) } };
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
        ...(checkedTrigger(value.startsOn) ?? {}),
      });
    }
  }
  return entries;
}
