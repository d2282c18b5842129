import { createReadStream } from "node:fs";
import { copyFile, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { digestHex, DIGEST_RE } from "./digest.ts";
import { BuilderError } from "./errors.ts";
import { assertTag, type FetchedImage, type ImageStore, type ProgressFn, type PushResult } from "./image-store.ts";
import { blobPath, type LayerBlob } from "./layer.ts";
import type { BuiltImage } from "./oci-image.ts";
import { MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, OciIndex, parseJson, REF_NAME_ANNOTATION } from "./oci-types.ts";
import { fetchImage, type BlobSource } from "./unpack.ts";

export const LAYOUT_REF_PREFIX = "oci-layout:";

/** `oci-layout:/abs/dir@sha256:…` (or `…:tag`) → its parts. */
export function parseLayoutRef(ref: string): { dir: string; digest?: string; tag?: string } {
  if (!ref.startsWith(LAYOUT_REF_PREFIX)) throw new BuilderError("BAD_REF", `not an OCI layout reference: ${ref}`);
  const rest = ref.slice(LAYOUT_REF_PREFIX.length);
  const at = rest.lastIndexOf("@");
  if (at > 0 && DIGEST_RE.test(rest.slice(at + 1))) return { dir: rest.slice(0, at), digest: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(":");
  if (colon > 0 && !rest.slice(colon + 1).includes("/")) return { dir: rest.slice(0, colon), tag: rest.slice(colon + 1) };
  throw new BuilderError("BAD_REF", `OCI layout reference needs @sha256:<digest> or :<tag>: ${ref}`);
}

const emptyIndex = (): OciIndex => ({ schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: [] });

async function readIndex(dir: string): Promise<OciIndex> {
  const raw = await readFile(join(dir, "index.json")).catch(() => null);
  return raw ? parseJson(OciIndex, raw, `${join(dir, "index.json")}`) : emptyIndex();
}

function layoutSource(dir: string): BlobSource {
  return {
    name: LAYOUT_REF_PREFIX + dir,
    async open(digest) {
      const path = blobPath(join(dir, "blobs"), digest);
      if (!(await stat(path).catch(() => null))) throw new BuilderError("NOT_FOUND", `blob ${digest} is not in ${dir}`);
      return createReadStream(path);
    },
  };
}

/**
 * An OCI image-layout directory (readable by skopeo `oci:<dir>:<tag>` and umoci). Index updates
 * within one process are serialized, and index.json is replaced atomically.
 */
export function createLayoutImageStore(dirInput: string): ImageStore {
  const dir = resolve(dirInput);
  let indexLock: Promise<unknown> = Promise.resolve();

  async function resolveTag(tag: string): Promise<string | null> {
    const index = await readIndex(dir);
    return index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag)?.digest ?? null;
  }

  async function addToIndex(image: BuiltImage, tag: string): Promise<void> {
    const index = await readIndex(dir);
    const existing = index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag);
    if (existing && existing.digest !== image.digest) {
      throw new BuilderError("TAG_EXISTS", `tag ${tag} in ${dir} already names ${existing.digest}; a version's tag is never overwritten`);
    }
    if (existing) return;
    index.manifests.push({ mediaType: MEDIA_TYPE_MANIFEST, digest: image.digest, size: image.manifestBytes.length, annotations: { [REF_NAME_ANNOTATION]: tag } });
    const tmp = join(dir, `.index.json.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(index));
    await rename(tmp, join(dir, "index.json"));
  }

  async function push(image: BuiltImage, tag: string, onProgress?: ProgressFn): Promise<PushResult> {
    assertTag(tag);
    const existing = await resolveTag(tag);
    if (existing && existing !== image.digest) {
      throw new BuilderError("TAG_EXISTS", `tag ${tag} in ${dir} already names ${existing}; a version's tag is never overwritten`);
    }
    await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    let bytesUploaded = 0;
    let blobsSkipped = 0;
    for (const blob of [...image.layers, image.configBlob]) {
      const target = blobPath(join(dir, "blobs"), blob.digest);
      const present = await stat(target).catch(() => null);
      if (present && present.size === blob.size) {
        blobsSkipped++;
        continue;
      }
      await (blob as Partial<LayerBlob>).remote?.fetch();
      onProgress?.(`copying ${blob.digest.slice(7, 19)} (${blob.size} bytes)`);
      const tmp = `${target}.tmp-${process.pid}`;
      await copyFile(blob.path, tmp);
      await rename(tmp, target);
      bytesUploaded += blob.size;
    }
    const manifestPath = blobPath(join(dir, "blobs"), image.digest);
    if (!(await stat(manifestPath).catch(() => null))) await writeFile(manifestPath, image.manifestBytes);
    const run = indexLock.then(() => addToIndex(image, tag));
    indexLock = run.catch(() => {});
    await run;
    return { ref: `${LAYOUT_REF_PREFIX}${dir}@${image.digest}`, digest: image.digest, bytesUploaded, blobsSkipped };
  }

  async function fetch(ref: string, destDir: string, onProgress?: ProgressFn): Promise<FetchedImage> {
    const parsed = parseLayoutRef(ref);
    const sourceDir = isAbsolute(parsed.dir) ? parsed.dir : resolve(parsed.dir);
    const digest = parsed.digest ?? (await createLayoutImageStore(sourceDir).resolveTag(parsed.tag!));
    if (!digest) throw new BuilderError("NOT_FOUND", `no tag ${parsed.tag} in ${sourceDir}`);
    digestHex(digest);
    return fetchImage(layoutSource(sourceDir), digest, destDir, onProgress);
  }

  return { kind: "oci-layout", push, fetch, resolveTag };
}
