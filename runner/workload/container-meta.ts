import { z } from "zod";
import { readMetaFile, writeMetaFile } from "./checkpoint-meta.ts";
import { MachineLimits } from "./runc-spec.ts";

/** Podman's exported checkpoint, beside the meta file in a checkpoint dir. */
export const CONTAINER_ARCHIVE = "container.tar";
/** Docker's checkpoint (CRIU's images as containerd hands them over), a dir beside the meta file. */
export const DOCKER_CHECKPOINT = "criu";

/** Written beside the checkpoint: what a restore (on any runner) needs besides it. */
export const ContainerCheckpointMeta = z.object({
  format: z.literal(1),
  runtime: z.literal("container"),
  /** Which engine dumped it (absent: Podman, as before Docker could): only that kind of engine restores it. */
  engine: z.enum(["podman", "docker"]).default("podman"),
  /** The host dir bound at the link mount when it was dumped: a restore binds its own dir there instead. */
  linkDir: z.string().startsWith("/"),
  /** The deployment's image; the engine must hold it (by digest) to import the checkpoint. */
  image: z.object({ ref: z.string().min(1), digest: z.string().regex(/^sha256:[0-9a-f]{64}$/) }),
  machine: MachineLimits.optional(),
  /**
   * Docker's checkpoint is CRIU's images alone: the restore makes a container like the dumped one
   * (command, working dir, binds besides the link dir) and starts it from them.
   */
  container: z.object({ cmd: z.array(z.string()).min(1), workingDir: z.string(), binds: z.array(z.string()) }).optional(),
  dumpedAt: z.string(),
});
export type ContainerCheckpointMeta = z.infer<typeof ContainerCheckpointMeta>;

export const writeContainerMeta = (imageDir: string, meta: z.input<typeof ContainerCheckpointMeta>): Promise<void> => writeMetaFile(imageDir, meta);
export const readContainerMeta = (imageDir: string): Promise<ContainerCheckpointMeta> => readMetaFile(imageDir, ContainerCheckpointMeta, "a container checkpoint");
