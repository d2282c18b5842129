import { allowedImageSources, imageRefRefusal, type AllowedImageSource, type ClaimedRun } from "../schemas/index.ts";
import { BuilderError, openImageStore, type FetchedImage } from "../builder/index.ts";

export interface ImageCacheOptions {
  /**
   * Where images may come from (`stasis runner --allowed-registries`); default
   * STASIS_ALLOWED_REGISTRIES, else the registry in STASIS_REGISTRY and local OCI layout dirs.
   */
  allowedSources?: AllowedImageSource[];
}

const KNOWN_IMAGES_MAX = 256;

/**
 * Resolves a run's deployment to the unpacked app dir of its image, pulled once per digest into a
 * cache dir. Runners of one host should share the cache dir: a checkpoint refers to the bundle by
 * path, so a restore needs the image at the same place. `rootfsFor` gives the image's whole root
 * filesystem (the runc workload runs it). An image from a source not allowed fails the run (and
 * only the run) with IMAGE_NOT_ALLOWED before anything is fetched.
 */
export function createImageCache(cacheDir: string, options: ImageCacheOptions = {}) {
  const sources = options.allowedSources ?? allowedImageSources(process.env.STASIS_ALLOWED_REGISTRIES, process.env.STASIS_REGISTRY);
  /** Images already unpacked and checked, by ref and digest: a claim then reads no file (one per run before; bench/trigger-latency/start-trace.ts). */
  const known = new Map<string, FetchedImage>();
  async function imageFor(deployment: ClaimedRun["deployment"]): Promise<FetchedImage> {
    const key = `${deployment.imageRef}\0${deployment.imageDigest}`;
    const seen = known.get(key);
    if (seen) return seen;
    const refusal = imageRefRefusal(deployment.imageRef, sources);
    if (refusal) throw new BuilderError("IMAGE_NOT_ALLOWED", `image ${deployment.imageRef} refused: ${refusal}`);
    const image = await openImageStore(deployment.imageRef).fetch(deployment.imageRef, cacheDir);
    if (image.digest !== deployment.imageDigest) throw new Error(`image ${deployment.imageRef} has digest ${image.digest}, the deployment expects ${deployment.imageDigest}`);
    known.set(key, image);
    if (known.size > KNOWN_IMAGES_MAX) known.delete(known.keys().next().value!);
    return image;
  }
  const appDirFor = async (deployment: ClaimedRun["deployment"]): Promise<string> => (await imageFor(deployment)).appDir;
  return Object.assign(appDirFor, { rootfsFor: async (deployment: ClaimedRun["deployment"]): Promise<string> => (await imageFor(deployment)).rootfsDir });
}
