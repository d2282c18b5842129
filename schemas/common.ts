import { z } from "zod";

/** `YYYYMMDD.N`, counted per environment. */
export const Version = z.string().regex(/^\d{8}\.\d+$/, "a version looks like 20261128.1");
export type Version = z.infer<typeof Version>;

export const TaskId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.:-]*$/, "task ids use letters, digits, '-', '_', '.', ':'");

export const EnvironmentSlug = z
  .string()
  .regex(/^(production|staging|development|preview\/[a-zA-Z0-9._-]{1,100})$/, "environment is production, staging, development or preview/<branch>");
export type EnvironmentSlug = z.infer<typeof EnvironmentSlug>;

/** Any JSON value; payloads and outputs are JSON. */
export const Json: z.ZodType<unknown> = z.unknown();

/** The documented payload limit: 3 MiB of JSON text. */
export const MAX_PAYLOAD_BYTES = 3 * 1024 * 1024;

/**
 * How deeply JSON input may nest (arrays and objects). Deeper input is refused with a 400 naming the
 * field: it would overflow the stack of whatever walks it next (JSON.stringify, PostgreSQL's jsonb).
 */
export const MAX_JSON_DEPTH = 256;

export const SerializedError = z.object({
  name: z.string(),
  message: z.string(),
  stack: z.string().optional(),
  /** The task threw AbortTaskRunError (or similar): do not retry. */
  doNotRetry: z.boolean().optional(),
  code: z.string().optional(),
});
export type SerializedError = z.infer<typeof SerializedError>;

export const ApiErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    field: z.string().optional(),
  }),
});
export type ApiErrorBody = z.infer<typeof ApiErrorBody>;

export const RetryOptions = z
  .object({
    maxAttempts: z.number().int().min(1).max(100).default(3),
    factor: z.number().min(1).max(10).default(2),
    minTimeoutInMs: z.number().int().min(0).default(1000),
    maxTimeoutInMs: z.number().int().min(0).default(60_000),
    randomize: z.boolean().default(true),
  })
  .strict();
export type RetryOptions = z.infer<typeof RetryOptions>;

export const MACHINE_PRESETS = {
  micro: { cpu: 0.25, memory: 256 },
  "small-1x": { cpu: 0.5, memory: 512 },
  "small-2x": { cpu: 1, memory: 1024 },
  "medium-1x": { cpu: 1, memory: 2048 },
  "medium-2x": { cpu: 2, memory: 4096 },
  "large-1x": { cpu: 4, memory: 8192 },
} as const;
export const MachinePreset = z.enum(Object.keys(MACHINE_PRESETS) as [keyof typeof MACHINE_PRESETS, ...(keyof typeof MACHINE_PRESETS)[]]);

/** cpu in cores, memory in MB. */
export const Machine = z
  .object({
    preset: MachinePreset.default("small-1x"),
    cpu: z.number().positive().max(64).optional(),
    memory: z.number().int().min(64).max(65536).optional(),
  })
  .strict();
export type Machine = z.infer<typeof Machine>;

/** How many runs a kept-alive process takes before it exits, when `processKeepAlive: true`. */
export const DEFAULT_KEEP_ALIVE_MAX_RUNS = 50;

/**
 * `processKeepAlive` in a task or `stasis.config.ts` (opt-in; off by default): a process that completed
 * a run may take the next run of the same version and environment instead of exiting, up to
 * `maxRuns` runs. `false` in a task turns the config's default off for it.
 */
export const ProcessKeepAlive = z.union([z.boolean(), z.object({ maxRuns: z.number().int().min(1).max(10_000).optional() }).strict()]);
export type ProcessKeepAlive = z.infer<typeof ProcessKeepAlive>;

/** The resolved setting a manifest entry carries: absent means one run per process. */
export const KeepAliveSetting = z.object({ maxRuns: z.number().int().min(1).max(10_000) }).strict();
export type KeepAliveSetting = z.infer<typeof KeepAliveSetting>;

/** A task's setting over the config's default, resolved (`undefined`: off). */
export function resolveKeepAlive(task: ProcessKeepAlive | undefined, config: ProcessKeepAlive | undefined): KeepAliveSetting | undefined {
  const chosen = task ?? config;
  if (!chosen) return undefined;
  return { maxRuns: chosen === true ? DEFAULT_KEEP_ALIVE_MAX_RUNS : (chosen.maxRuns ?? DEFAULT_KEEP_ALIVE_MAX_RUNS) };
}
