import path from "node:path";
import { registryAuthFromEnv, registryBaseUrl } from "../../builder/index.ts";
import { createDirCheckpointStore } from "./dir-store.ts";
import { CheckpointStoreError } from "./errors.ts";
import { createRegistryCheckpointStore } from "./registry-store.ts";
import type { CheckpointStore } from "./types.ts";

export type CheckpointStoreKind = "dir" | "registry";

export interface OpenCheckpointStoreOptions {
  /** `dir` (default STASIS_CHECKPOINT_STORE, else dir) or `registry`. */
  kind?: string;
  /** dir: the directory (default STASIS_CHECKPOINT_DIR, else `defaultDir`). */
  dir?: string;
  defaultDir: string;
  /** registry: `host[:port]/repo` (default STASIS_CHECKPOINT_REPOSITORY, else `<STASIS_REGISTRY>/checkpoints`). */
  repository?: string;
}

export interface OpenedCheckpointStore {
  store: CheckpointStore;
  kind: CheckpointStoreKind;
  /** Where it keeps checkpoints (a directory, or `host/repo`), for logs. */
  where: string;
}

/**
 * The checkpoint store a runner (or `stasis checkpoints`) was asked for. Registry credentials are the
 * image registry's (STASIS_REGISTRY_USERNAME/PASSWORD or _TOKEN), and go only to the host they are
 * bound to (registryAuthFromEnv): a checkpoint repository on another host gets none.
 */
export function openCheckpointStore(o: OpenCheckpointStoreOptions, env: NodeJS.ProcessEnv = process.env): OpenedCheckpointStore {
  const kind = o.kind ?? env.STASIS_CHECKPOINT_STORE ?? "dir";
  if (kind === "dir") {
    const dir = path.resolve(o.dir ?? env.STASIS_CHECKPOINT_DIR ?? o.defaultDir);
    return { store: createDirCheckpointStore(dir), kind, where: dir };
  }
  if (kind !== "registry") throw new CheckpointStoreError("BAD_LOCATION", `the checkpoint store is dir or registry, not ${JSON.stringify(kind)}`);
  const target = o.repository ?? env.STASIS_CHECKPOINT_REPOSITORY ?? (env.STASIS_REGISTRY ? `${env.STASIS_REGISTRY.replace(/\/+$/, "")}/checkpoints` : undefined);
  if (!target) throw new CheckpointStoreError("BAD_LOCATION", "the registry checkpoint store needs a repository: --checkpoint-repository host[:port]/repo, STASIS_CHECKPOINT_REPOSITORY or STASIS_REGISTRY");
  const slash = target.indexOf("/");
  if (slash <= 0 || /[@:]/.test(target.slice(slash + 1))) throw new CheckpointStoreError("BAD_LOCATION", `a checkpoint repository looks like host[:port]/repo (no tag or digest), got ${JSON.stringify(target)}`);
  const host = target.slice(0, slash).toLowerCase();
  const repository = target.slice(slash + 1);
  const store = createRegistryCheckpointStore({ url: registryBaseUrl(host), repository, auth: registryAuthFromEnv(env, host, true) });
  return { store, kind, where: `${host}/${repository}` };
}
