import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { CHECKPOINT_META_FILE } from "./checkpoint-meta.ts";
import { WorkloadError } from "./errors.ts";
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

export async function writeRuncMeta(imageDir: string, meta: RuncCheckpointMeta): Promise<void> {
  await writeFile(path.join(imageDir, CHECKPOINT_META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
}

export async function readRuncMeta(imageDir: string): Promise<RuncCheckpointMeta> {
  const file = path.join(imageDir, CHECKPOINT_META_FILE);
  const text = await readFile(file, "utf8").catch((err: unknown) => {
    throw new WorkloadError("BAD_CHECKPOINT", `${imageDir} is not a runc checkpoint: ${CHECKPOINT_META_FILE} is missing`, { cause: err });
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new WorkloadError("BAD_CHECKPOINT", `${file} is not valid JSON`, { cause: err });
  }
  const parsed = RuncCheckpointMeta.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new WorkloadError("BAD_CHECKPOINT", `${file} is not a runc checkpoint: ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return parsed.data;
}
