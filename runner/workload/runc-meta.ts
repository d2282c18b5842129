import { z } from "zod";
import { readMetaFile, writeMetaFile } from "./checkpoint-meta.ts";
import { ContainerProcess, MachineLimits } from "./runc-spec.ts";

/** Written beside runc's images: what a restore (on any runner) needs to rebuild the bundle. */
export const RuncCheckpointMeta = z.object({
  format: z.literal(1),
  runtime: z.literal("runc"),
  /** Inode of the task's fd 3 (a socket to the runner) at dump time: handed a fresh socket on restore. */
  ipcSocket: z.string().regex(/^\d+$/, "a socket inode number"),
  process: ContainerProcess,
  /** The rootfs at dump time; a restore may name another copy of the same image. */
  rootfs: z.string(),
  machine: MachineLimits.optional(),
  dumpedAt: z.string(),
});
export type RuncCheckpointMeta = z.infer<typeof RuncCheckpointMeta>;

export const writeRuncMeta = (imageDir: string, meta: RuncCheckpointMeta): Promise<void> => writeMetaFile(imageDir, meta);
export const readRuncMeta = (imageDir: string): Promise<RuncCheckpointMeta> => readMetaFile(imageDir, RuncCheckpointMeta, "a runc checkpoint");
