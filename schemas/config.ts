import { z } from "zod";
import { Machine, ProcessKeepAlive, RetryOptions } from "./common.ts";
import { SafetyCheckpointSetting } from "./manifest.ts";

/** `stasis.config.ts` default export, parsed once when a project is loaded. */
export const StasisConfig = z
  .object({
    /** Project slug: lowercase letters, digits and dashes. */
    project: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "project is a slug: lowercase letters, digits, '-'"),
    /** Directories holding task files, relative to the config file. Default: every `trigger/` dir. */
    dirs: z.array(z.string().min(1)).min(1).optional(),
    retries: z
      .object({ default: RetryOptions.partial().optional(), enabledInDev: z.boolean().default(true) })
      .strict()
      .optional(),
    /** Seconds; a run that runs longer is TIMED_OUT. */
    maxDuration: z.number().int().positive().optional(),
    machine: Machine.partial().optional(),
    /** Safety checkpoints for every task that does not set its own (see SafetyCheckpointSetting). */
    checkpoint: SafetyCheckpointSetting.optional(),
    /** Default for every task: a process that completed a run may take the next run of the same version (README "Process reuse"). */
    processKeepAlive: ProcessKeepAlive.optional(),
    build: z
      .object({
        /** Packages to keep out of the bundle and install into their own image layer. */
        external: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .optional(),
  })
  .strict();
export type StasisConfig = z.infer<typeof StasisConfig>;
export type StasisConfigInput = z.input<typeof StasisConfig>;
