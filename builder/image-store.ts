import type { BuildManifest } from "../schemas/index.ts";
import type { BuiltImage } from "./oci-image.ts";
import type { OciImageConfig, OciManifest } from "./oci-types.ts";

export type ProgressFn = (message: string) => void;

export interface PushResult {
  /** Where the image now lives, always with its digest: `oci-layout:<dir>@sha256:…` or `host/repo@sha256:…`. */
  ref: string;
  digest: string;
  bytesUploaded: number;
  blobsSkipped: number;
}

export interface FetchedImage {
  digest: string;
  manifest: OciManifest;
  config: OciImageConfig;
  /** The image's root filesystem, all layers applied. */
  rootfsDir: string;
  /** `rootfsDir/app`: the bundle and `stasis-manifest.json`. */
  appDir: string;
  /** Parsed from the app layer; null when the image has none. */
  buildManifest: BuildManifest | null;
}

/**
 * Where images live. Two implementations (an OCI image-layout dir, an OCI registry) pass one
 * conformance suite (`image-store.conformance.ts`).
 */
export interface ImageStore {
  readonly kind: "oci-layout" | "registry";
  /** Stores the image under `tag`. A tag that already names another digest is refused (TAG_EXISTS). */
  push(image: BuiltImage, tag: string, onProgress?: ProgressFn): Promise<PushResult>;
  /**
   * Downloads (verifying every blob's sha256) and unpacks the image into `destDir/<digest hex>/`.
   * Cached by digest; concurrent fetches of one digest share one download.
   */
  fetch(ref: string, destDir: string, onProgress?: ProgressFn): Promise<FetchedImage>;
  /** The digest a tag names in this store, or null. */
  resolveTag(tag: string): Promise<string | null>;
}

export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function assertTag(tag: string): void {
  if (!TAG_RE.test(tag)) throw new Error(`bad image tag ${JSON.stringify(tag)}: use letters, digits, '_', '.', '-' (at most 128)`);
}
