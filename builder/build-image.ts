import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { BuildManifest } from "../schemas/index.ts";
import { pullBaseImage } from "./base-image.ts";
import { parseRegistryRef } from "./registry-store.ts";
import { ENTRY_FILE } from "./bundle.ts";
import { readGitInfo } from "./git-info.ts";
import { buildAppLayersIsolated, type SandboxOptions } from "./isolated-build/index.ts";
import type { LayerBlob } from "./layer.ts";
import { assembleImage, type BuiltImage } from "./oci-image.ts";
import { localNodeRuntimeLayer, stasisCacheDir } from "./runtime-layer.ts";

export type BaseImageOption = { kind: "local-node" } | { kind: "registry"; ref: string } | { kind: "none" };

export interface BuildImageOptions {
  projectDir: string;
  /** Extra labels; they win over the ones derived from the commit. */
  labels?: Record<string, string>;
  /**
   * Where Node comes from: a runtime image in a registry (default `STASIS_RUNTIME_IMAGE` when set:
   * the image then does not depend on the builder's own Node), else the local Node, or nothing.
   */
  base?: BaseImageOption;
  /** false = no runtime layer (process-mode runners use the host's Node): fast dev rebuilds. */
  withRuntime?: boolean;
  onProgress?: (message: string) => void;
  /** Seconds; default SOURCE_DATE_EPOCH, else the HEAD commit's time, else 0. */
  sourceDateEpoch?: number;
  /** Default: a fresh `<projectDir>/.stasis/build/<id>`, so concurrent builds of one project never share files. */
  buildDir?: string;
  /** Paths the build must not see, an abort signal, a time limit (the project's code runs in the build sandbox). */
  sandbox?: Omit<SandboxOptions, "onProgress">;
}

export type BuiltProjectImage = BuiltImage & {
  buildManifest: BuildManifest;
  /** The Node the image runs (`v22.12.0`), or null without a runtime layer. */
  nodeVersion: string | null;
  /** Removes the build's scratch files (when the builder chose the dir); call after pushing. */
  dispose(): Promise<void>;
};

const PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function isoSeconds(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * trigger/ dirs → bundle → task index → OCI image (runtime, externals, app layers) in
 * `<buildDir>/blobs`. Equal inputs at one commit give an equal manifest digest. Everything that
 * runs or reads the project (config, bundle, index, its layers) happens in the build sandbox
 * (isolated-build/); this process adds the runtime layer and assembles the image.
 */
export async function buildImage(o: BuildImageOptions): Promise<BuiltProjectImage> {
  const projectDir = resolve(o.projectDir);
  // Every build gets its own dir at the same depth (source-map paths, hence digests, stay equal).
  const buildDir = resolve(o.buildDir ?? join(projectDir, ".stasis", "build", `${process.pid}-${randomBytes(4).toString("hex")}`));
  const blobsDir = join(buildDir, "blobs");
  await rm(blobsDir, { recursive: true, force: true });
  const dispose = async () => {
    if (!o.buildDir) await rm(buildDir, { recursive: true, force: true });
  };
  // Read before the project's code runs (it cannot change what git reports here).
  const git = await readGitInfo(projectDir);
  const envEpoch = process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : undefined;
  const epoch = o.sourceDateEpoch ?? (Number.isFinite(envEpoch) ? envEpoch! : git?.committedAt ?? 0);

  let bundle;
  try {
    bundle = await buildAppLayersIsolated(projectDir, blobsDir, epoch, { ...o.sandbox, onProgress: o.onProgress });
  } catch (error) {
    await dispose();
    throw error;
  }
  const layers: LayerBlob[] = [];
  let baseEnv: string[] = [];
  const base = runtimeSource(o);
  const runtimeLabels: Record<string, string> = {};
  let nodeVersion: string | null = null;
  if (base.kind === "local-node") {
    layers.push(await localNodeRuntimeLayer(o.onProgress));
    nodeVersion = process.version;
    o.onProgress?.(`the image runs this machine's Node ${nodeVersion} (set STASIS_RUNTIME_IMAGE to a runtime image so every builder gives the same image)`);
  }
  if (base.kind === "registry") {
    // Lazy: only the manifest and config are read; a push to the same registry mounts its layers.
    const pulled = await pullBaseImage(base.ref, join(stasisCacheDir(), "layers", "blobs"), o.onProgress, { lazy: true });
    layers.push(...pulled.layers);
    baseEnv = pulled.env.filter((e) => !e.startsWith("PATH=") && !e.startsWith("UV_USE_IO_URING=") && !e.startsWith("NODE_ENV="));
    const { host, repository } = parseRegistryRef(base.ref);
    runtimeLabels["stasis.runtime-image"] = `${host}/${repository}@${pulled.digest}`;
    nodeVersion = pulled.labels["stasis.node-version"] ?? null;
    o.onProgress?.(`the image runs Node ${nodeVersion ?? "(version not labelled)"} from the runtime image ${runtimeLabels["stasis.runtime-image"]}`);
  }
  if (nodeVersion) runtimeLabels["stasis.node-version"] = nodeVersion;
  layers.push(...bundle.layers);

  const labels: Record<string, string> = {
    "org.opencontainers.image.created": isoSeconds(epoch),
    "org.opencontainers.image.title": bundle.manifest.project,
    "stasis.project": bundle.manifest.project,
    "stasis.content-hash": bundle.manifest.contentHash,
    "stasis.sdk-version": bundle.manifest.sdkVersion,
    "stasis.tasks": bundle.manifest.tasks.map((t) => t.id).join(","),
    ...(git ? { "org.opencontainers.image.revision": git.sha } : {}),
    ...(git?.branch ? { "stasis.branch": git.branch } : {}),
    ...runtimeLabels,
    ...o.labels,
  };
  o.onProgress?.(`image: ${layers.length} layer(s), ${bundle.manifest.tasks.length} task(s)`);
  const image = await assembleImage({
    blobsDir,
    layers,
    entrypoint: ["node", `/app/${ENTRY_FILE}`],
    env: [PATH, "UV_USE_IO_URING=0", "NODE_ENV=production", ...baseEnv],
    labels,
    workingDir: "/app",
    created: isoSeconds(epoch),
    buildManifest: bundle.manifest,
  });
  return Object.assign(image, { buildManifest: bundle.manifest, nodeVersion, dispose });
}

function runtimeSource(o: BuildImageOptions): BaseImageOption {
  if (o.withRuntime === false) return { kind: "none" };
  if (o.base) return o.base;
  const ref = process.env.STASIS_RUNTIME_IMAGE?.trim();
  return ref ? { kind: "registry", ref } : { kind: "local-node" };
}
