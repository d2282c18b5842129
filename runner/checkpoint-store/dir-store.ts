import { randomUUID } from "node:crypto";
import { mkdir, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import path from "node:path";
import { CheckpointIntegrityError, CheckpointStoreError, checkKey } from "./errors.ts";
import { sha256OffThread } from "./file-digest.ts";
import { packDir, unpackFile } from "./tar-zstd.ts";
import type { CheckpointStore } from "./types.ts";

const PREFIX = "dir:";
const SUFFIX = ".tar.zst.sealed";

const integrityError = (location: string, actual: string, expected: string) =>
  new CheckpointIntegrityError(`checkpoint ${location} has sha256 ${actual}, which does not match the sha256 ${expected} the server recorded at suspend: refusing to restore it (altered or swapped)`);

/**
 * Checkpoints as sealed (AES-256-GCM, see sealed-stream.ts) zstd-compressed tarballs under `rootDir` — a local disk, or a directory shared by
 * all runners (NFS and the like). Locations (`dir:<key>.tar.zst`) are relative to the root, so runners
 * may mount it at different paths. Writes go to a temp file beside the target and are renamed into
 * place, so a location never names a half-written checkpoint.
 */
export function createDirCheckpointStore(rootDir: string): CheckpointStore {
  const root = path.resolve(rootDir);

  const fileFor = (location: string): string => {
    const relative = location.startsWith(PREFIX) ? location.slice(PREFIX.length) : undefined;
    const file = relative === undefined ? undefined : path.resolve(root, relative);
    if (!relative || !file || !relative.endsWith(SUFFIX) || path.isAbsolute(relative) || !file.startsWith(root + path.sep)) {
      throw new CheckpointStoreError("BAD_LOCATION", `checkpoint location ${JSON.stringify(location)} is not a ${PREFIX}…${SUFFIX} path inside ${root}`);
    }
    return file;
  };

  return {
    async put(key, imageDir, seal, signal) {
      const segments = checkKey(key);
      const relative = `${segments.join("/")}${SUFFIX}`;
      const file = path.join(root, relative);
      const source = await stat(imageDir).catch(() => undefined);
      if (!source?.isDirectory()) throw new CheckpointStoreError("PUT_FAILED", `cannot store checkpoint ${key}: ${imageDir} is not a directory`);
      await mkdir(path.dirname(file), { recursive: true });
      const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID()}.tmp`);
      let sha256: string;
      try {
        ({ sha256 } = await packDir(imageDir, tmp, seal.key, signal));
        await rename(tmp, file);
      } catch (err) {
        await rm(tmp, { force: true });
        throw new CheckpointStoreError("PUT_FAILED", `cannot store checkpoint ${key}: ${(err as Error).message}`, { cause: err });
      }
      return { location: `${PREFIX}${relative}`, sizeBytes: (await stat(file)).size, sha256 };
    },

    async get(location, destDir, expect) {
      const file = fileFor(location);
      if (!(await stat(file).catch(() => undefined))?.isFile()) {
        throw new CheckpointStoreError("NOT_FOUND", `checkpoint ${location} does not exist in ${root}`);
      }
      const dest = path.resolve(destDir);
      const tmp = `${dest}.${randomUUID()}.partial`;
      try {
        await mkdir(tmp, { recursive: true });
        // Hashed (on another thread) while it is opened and unpacked into a dir of its own;
        // only bytes the GCM tags authenticated reach tar, and nothing reaches `destDir` unless the digest matches.
        const { sha256: actual } = await unpackFile(file, tmp, expect.key).catch(async (error: unknown) => {
          // A file that does not open may be a swapped one: say so by its digest when it is not the recorded one.
          const digest = await sha256OffThread([file]).catch(() => expect.sha256);
          if (digest !== expect.sha256) throw integrityError(location, digest, expect.sha256);
          throw error;
        });
        if (actual !== expect.sha256) throw integrityError(location, actual, expect.sha256);
        await mkdir(dest, { recursive: true });
        for (const entry of await readdir(tmp)) await rename(path.join(tmp, entry), path.join(dest, entry));
      } catch (err) {
        if (err instanceof CheckpointIntegrityError) throw err;
        if ((err as Error).name === "SealedCheckpointError") {
          throw new CheckpointIntegrityError(`checkpoint ${location} does not open under its key: ${(err as Error).message}; nothing restored`, { cause: err });
        }
        throw new CheckpointStoreError("GET_FAILED", `cannot fetch checkpoint ${location}: ${(err as Error).message}`, { cause: err });
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },

    async delete(location) {
      const file = fileFor(location);
      await rm(file, { force: true });
      // Drop directories the key created, up to the root, once they are empty.
      for (let dir = path.dirname(file); dir !== root && dir.startsWith(root + path.sep); dir = path.dirname(dir)) {
        if (!(await rmdir(dir).then(() => true, () => false))) break; // not empty (or gone)
      }
    },

    async list() {
      const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
      const stored = [];
      for (const entry of entries) {
        if (!entry.isFile() || !entry.name.endsWith(SUFFIX) || entry.name.startsWith(".")) continue;
        const file = path.join(entry.parentPath, entry.name);
        const info = await stat(file).catch(() => undefined);
        if (!info) continue; // deleted meanwhile
        const relative = path.relative(root, file);
        stored.push({ location: `${PREFIX}${relative}`, key: relative.slice(0, -SUFFIX.length), sizeBytes: info.size, createdAt: info.mtimeMs });
      }
      return stored;
    },
  };
}
