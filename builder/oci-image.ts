import type { BuildManifest } from "../schemas/index.ts";
import { writeBlob, type BlobFile, type LayerBlob } from "./layer.ts";
import { MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST, type OciImageConfig, type OciManifest } from "./oci-types.ts";

/** An image built on local disk: every blob is a file under `blobsDir/sha256/`. */
export interface BuiltImage {
  /** The manifest digest, `sha256:…`: the image's identity. */
  digest: string;
  manifest: OciManifest;
  manifestBytes: Buffer;
  config: OciImageConfig;
  configBlob: BlobFile;
  layers: LayerBlob[];
  blobsDir: string;
  /** The task index stored in the app layer; null for images not built by `buildImage`. */
  buildManifest: BuildManifest | null;
}

export interface AssembleImageOptions {
  blobsDir: string;
  layers: LayerBlob[];
  entrypoint: string[];
  env: string[];
  labels: Record<string, string>;
  workingDir: string;
  /** ISO date; the commit's time, never the clock, so equal inputs give equal digests. */
  created: string;
  buildManifest?: BuildManifest | null;
  /** Extra config fields of a base image (e.g. its own Env) are merged by the caller. */
  history?: Array<{ created: string; created_by: string }>;
}

function sortedRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export async function assembleImage(o: AssembleImageOptions): Promise<BuiltImage> {
  const config: OciImageConfig = {
    created: o.created,
    architecture: "amd64",
    os: "linux",
    config: { Entrypoint: o.entrypoint, Env: o.env, WorkingDir: o.workingDir, Labels: sortedRecord(o.labels) },
    rootfs: { type: "layers", diff_ids: o.layers.map((l) => l.diffId) },
    ...(o.history ? { history: o.history } : {}),
  };
  const configBlob = await writeBlob(Buffer.from(JSON.stringify(config)), MEDIA_TYPE_CONFIG, o.blobsDir);
  const manifest: OciManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_MANIFEST,
    config: { mediaType: MEDIA_TYPE_CONFIG, digest: configBlob.digest, size: configBlob.size },
    layers: o.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestBlob = await writeBlob(manifestBytes, MEDIA_TYPE_MANIFEST, o.blobsDir);
  return {
    digest: manifestBlob.digest,
    manifest,
    manifestBytes,
    config,
    configBlob,
    layers: o.layers,
    blobsDir: o.blobsDir,
    buildManifest: o.buildManifest ?? null,
  };
}
