import { resolve } from "node:path";
import { buildImage, type BuildImageOptions } from "./build-image.ts";
import { createLayoutImageStore } from "./layout-store.ts";

export interface BuildToLayoutOptions extends Omit<BuildImageOptions, "projectDir"> {
  projectDir: string;
  /** The OCI image-layout directory to write (created when missing). Default `<projectDir>/.stasis/oci`. */
  outDir?: string;
  /** `ref.name` in index.json; default `build-<first 12 hex of the digest>`. */
  tag?: string;
}

export interface BuildToLayoutResult {
  digest: string;
  layout: string;
  tag: string;
  ref: string;
  contentHash: string;
  tasks: string[];
}

/** What `stasis build` does: build the image and write it into an OCI layout dir. */
export async function buildToLayout(o: BuildToLayoutOptions): Promise<BuildToLayoutResult> {
  const layout = resolve(o.outDir ?? resolve(o.projectDir, ".stasis", "oci"));
  const image = await buildImage(o);
  const tag = o.tag ?? `build-${image.digest.slice(7, 19)}`;
  const pushed = await createLayoutImageStore(layout).push(image, tag, o.onProgress).finally(() => image.dispose());
  return { digest: image.digest, layout, tag, ref: pushed.ref, contentHash: image.buildManifest.contentHash, tasks: image.buildManifest.tasks.map((t) => t.id) };
}
