import { z } from "zod";
import { readMetaFile, writeMetaFile } from "./checkpoint-meta.ts";
import { MachineLimits } from "./runc-spec.ts";

/** The engine's exported checkpoint, beside the meta file in a checkpoint dir. */
export const CONTAINER_ARCHIVE = "container.tar";

/** Written beside the exported checkpoint: what a restore (on any runner) needs besides the tar. */
export const ContainerCheckpointMeta = z.object({
  format: z.literal(1),
  runtime: z.literal("container"),
  /** The host dir bound at the link mount when it was dumped: a restore binds its own dir there instead. */
  linkDir: z.string().startsWith("/"),
  /** The deployment's image; the engine must hold it (by digest) to import the checkpoint. */
  image: z.object({ ref: z.string().min(1), digest: z.string().regex(/^sha256:[0-9a-f]{64}$/) }),
  machine: MachineLimits.optional(),
  dumpedAt: z.string(),
});
export type ContainerCheckpointMeta = z.infer<typeof ContainerCheckpointMeta>;

export const writeContainerMeta = (imageDir: string, meta: ContainerCheckpointMeta): Promise<void> => writeMetaFile(imageDir, meta);
export const readContainerMeta = (imageDir: string): Promise<ContainerCheckpointMeta> => readMetaFile(imageDir, ContainerCheckpointMeta, "a container checkpoint");
