import type { ClaimedRun } from "../schemas/index.ts";
import { openImageStore, type FetchedImage } from "../builder/index.ts";

/**
 * Resolves a run's deployment to the unpacked app dir of its image, pulled once per digest into a
 * cache dir. Runners of one host should share the cache dir: a checkpoint refers to the bundle by
 * path, so a restore needs the image at the same place. `rootfsFor` gives the image's whole root
 * filesystem (the runc workload runs it).
 */
export function createImageCache(cacheDir: string) {
  async function imageFor(deployment: ClaimedRun["deployment"]): Promise<FetchedImage> {
    const image = await openImageStore(deployment.imageRef).fetch(deployment.imageRef, cacheDir);
    if (image.digest !== deployment.imageDigest) throw new Error(`image ${deployment.imageRef} has digest ${image.digest}, the deployment expects ${deployment.imageDigest}`);
    return image;
  }
  const appDirFor = async (deployment: ClaimedRun["deployment"]): Promise<string> => (await imageFor(deployment)).appDir;
  return Object.assign(appDirFor, { rootfsFor: async (deployment: ClaimedRun["deployment"]): Promise<string> => (await imageFor(deployment)).rootfsDir });
}
