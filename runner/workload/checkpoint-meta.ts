import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { WorkloadError } from "./errors.ts";

/** Written beside CRIU's images: what a restore (on any runner) needs besides the images. */
export const CHECKPOINT_META_FILE = "stasis-workload.json";

const SocketInode = z.string().regex(/^\d+$/, "a socket inode number");

export const CheckpointMeta = z.object({
  /** 2: a sandboxed task's /tmp and /dev/shm are external mounts, their content in task-root.ts's SCRATCH_ARCHIVE (1: CRIU's own tmpfs images). */
  format: z.union([z.literal(1), z.literal(2)]),
  runtime: z.literal("process"),
  /** Inodes of the task's stdio sockets at dump time, handed fresh sockets on restore. */
  sockets: z.object({ stdout: SocketInode, stderr: SocketInode, ipc: SocketInode, status: SocketInode }),
  criuVersion: z.string(),
  dumpedAt: z.string(),
  /** This dump's own id: a restore on the runner that took it finds the restore it prepared ahead (prepared-restores.ts). */
  dumpId: z.string().optional(),
  /** The user a sandboxed task runs as (CRIU gives it back; criu may have to run as it). Absent: the runner's user. */
  user: z.object({ uid: z.number().int().positive(), gid: z.number().int().positive() }).optional(),
  /** A sandboxed task's binds from the host (task-root.ts), bound again on restore. Absent: the task had the host's mount table. */
  mounts: z.array(z.object({ mountPoint: z.string().startsWith("/"), key: z.string().min(1) })).optional(),
});
export type CheckpointMeta = z.infer<typeof CheckpointMeta>;

/** Writes a runtime's meta file beside CRIU's images. */
export async function writeMetaFile(imageDir: string, meta: unknown): Promise<void> {
  await writeFile(path.join(imageDir, CHECKPOINT_META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
}

/** Reads and checks a runtime's meta file; `kind` names the checkpoint in errors ("a runc checkpoint"). */
export async function readMetaFile<T>(imageDir: string, schema: z.ZodType<T>, kind: string): Promise<T> {
  const file = path.join(imageDir, CHECKPOINT_META_FILE);
  const text = await readFile(file, "utf8").catch((err: unknown) => {
    throw new WorkloadError("BAD_CHECKPOINT", `${imageDir} is not ${kind}: ${CHECKPOINT_META_FILE} is missing`, { cause: err });
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new WorkloadError("BAD_CHECKPOINT", `${file} is not valid JSON`, { cause: err });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new WorkloadError("BAD_CHECKPOINT", `${file} is not ${kind}: ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return parsed.data;
}

export const writeCheckpointMeta = (imageDir: string, meta: CheckpointMeta): Promise<void> => writeMetaFile(imageDir, meta);
export const readCheckpointMeta = (imageDir: string): Promise<CheckpointMeta> => readMetaFile(imageDir, CheckpointMeta, "a process-runtime checkpoint");
