import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { WorkloadError } from "./errors.ts";

/** Written beside CRIU's images: what a restore (on any runner) needs besides the images. */
export const CHECKPOINT_META_FILE = "stasis-workload.json";

const SocketInode = z.string().regex(/^\d+$/, "a socket inode number");

export const CheckpointMeta = z.object({
  format: z.literal(1),
  runtime: z.literal("process"),
  /** Inodes of the task's stdio sockets at dump time, handed fresh sockets on restore. */
  sockets: z.object({ stdout: SocketInode, stderr: SocketInode, ipc: SocketInode, status: SocketInode }),
  criuVersion: z.string(),
  dumpedAt: z.string(),
});
export type CheckpointMeta = z.infer<typeof CheckpointMeta>;

export async function writeCheckpointMeta(imageDir: string, meta: CheckpointMeta): Promise<void> {
  await writeFile(path.join(imageDir, CHECKPOINT_META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
}

export async function readCheckpointMeta(imageDir: string): Promise<CheckpointMeta> {
  const file = path.join(imageDir, CHECKPOINT_META_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new WorkloadError("BAD_CHECKPOINT", `${imageDir} is not a process-runtime checkpoint: ${CHECKPOINT_META_FILE} is missing`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new WorkloadError("BAD_CHECKPOINT", `${file} is not valid JSON`, { cause: err });
  }
  const parsed = CheckpointMeta.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new WorkloadError("BAD_CHECKPOINT", `${file}: ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return parsed.data;
}
