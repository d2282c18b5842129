import { mkdtemp, readFile, rm, symlink, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { c as createTar } from "tar";
import { LAYOUT_REF_PREFIX, parseLayoutRef, parseRegistryRef, registryBaseUrl } from "../../builder/index.ts";
import type { ContainerEngine } from "./container-engine.ts";
import { WorkloadError } from "./errors.ts";

/** A deployment's image: where it lives and the manifest digest it must have. */
export interface ContainerImage {
  ref: string;
  digest: string;
}

interface Manifest {
  config: { digest: string };
  layers: Array<{ digest: string }>;
}

/**
 * Makes the engine hold `image` (by manifest digest), once per digest however many tasks start at
 * once: from a registry, the engine pulls it by digest (plain http for a loopback registry, as the
 * builder pushes it); from a local OCI layout (`oci-layout:<dir>@sha256:…`, one host), the layout's
 * blobs of that one image are streamed to the engine's load endpoint, as an OCI archive (Podman) or
 * a `docker save` archive (Docker). Either way the engine's copy is looked up by digest afterwards
 * (Docker's loaded copy by its config's digest, which is its id), so an image that is not what the
 * deployment names is never run. Answers the engine's image id.
 */
export function createImageLoader(engine: ContainerEngine, scratchDir: string) {
  const loading = new Map<string, Promise<string>>();

  async function load(image: ContainerImage): Promise<string> {
    const layout = image.ref.startsWith(LAYOUT_REF_PREFIX) ? parseLayoutRef(image.ref).dir : null;
    const blob = (d: string) => path.join(layout!, "blobs", ...d.split(":"));
    const manifest = layout ? (JSON.parse(await readFile(blob(image.digest), "utf8")) as Manifest) : null;
    const configDigest = engine.archiveFormat === "docker" ? manifest?.config.digest : undefined;
    const present = await engine.findImage(image.digest, configDigest);
    if (present) return present;
    if (layout && manifest) {
      const stage = await mkdtemp(path.join(scratchDir, "layout-"));
      const archive = engine.archiveFormat === "docker" ? await dockerArchive(blob, manifest, image.digest, stage) : await ociArchive(blob, manifest, image.digest, stage);
      archive.once("close", () => void rm(stage, { recursive: true, force: true }));
      await engine.load(archive);
    } else {
      const { host, repository } = parseRegistryRef(image.ref);
      await engine.pull(`${host}/${repository}@${image.digest}`, registryBaseUrl(host).startsWith("https:"));
    }
    const loaded = await engine.findImage(image.digest, configDigest);
    if (!loaded) throw new WorkloadError("START_FAILED", `the container engine has no image with digest ${image.digest} after fetching ${image.ref}`);
    return loaded;
  }

  return (image: ContainerImage): Promise<string> => {
    let found = loading.get(image.digest);
    if (!found) {
      found = load(image).catch((err: unknown) => {
        loading.delete(image.digest);
        throw err instanceof WorkloadError ? err : new WorkloadError("START_FAILED", `cannot get image ${image.ref} into the container engine: ${(err as Error).message}`, { cause: err });
      });
      loading.set(image.digest, found);
    }
    return found;
  };
}

const imageName = (digest: string) => `stasis/image:${digest.slice("sha256:".length, "sha256:".length + 12)}`;

/** An OCI archive (a tarred OCI layout) holding only the image `digest`, staged (as symlinks) in `stage`. */
async function ociArchive(blob: (d: string) => string, manifest: Manifest, digest: string, stage: string): Promise<Readable> {
  await mkdir(path.join(stage, "blobs", "sha256"), { recursive: true });
  const digests = new Set([digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]);
  for (const d of digests) await symlink(blob(d), path.join(stage, "blobs", ...d.split(":")));
  const size = (await readFile(blob(digest))).length;
  await writeFile(path.join(stage, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(path.join(stage, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size, annotations: { "org.opencontainers.image.ref.name": imageName(digest) } }] }));
  return Readable.from(createTar({ cwd: stage, follow: true, portable: true }, ["oci-layout", "index.json", "blobs"]));
}

/**
 * A `docker save` archive of the image: manifest.json naming the config and the layers (the layout's
 * compressed blobs as they are: Docker decompresses each layer as it loads it).
 */
async function dockerArchive(blob: (d: string) => string, manifest: Manifest, digest: string, stage: string): Promise<Readable> {
  const file = (d: string) => `${d.split(":")[1]}${d === manifest.config.digest ? ".json" : ".tar"}`;
  const digests = new Set([manifest.config.digest, ...manifest.layers.map((l) => l.digest)]);
  for (const d of digests) await symlink(blob(d), path.join(stage, file(d)));
  await writeFile(path.join(stage, "manifest.json"), JSON.stringify([{ Config: file(manifest.config.digest), RepoTags: [imageName(digest)], Layers: manifest.layers.map((l) => file(l.digest)) }]));
  return Readable.from(createTar({ cwd: stage, follow: true, portable: true }, ["manifest.json", ...[...digests].map(file)]));
}
