import { readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { BuildManifest } from "../schemas/index.ts";
import { bundleProject } from "./bundle.ts";
import { externalsLayerEntries } from "./externals.ts";
import { writeLayer, type LayerBlob } from "./layer.ts";
import { loadProjectConfig, type LoadedProjectConfig } from "./load-config.ts";
import type { TarEntry } from "./tar-writer.ts";

export interface BuildAppLayersOptions {
  projectDir: string;
  /** Holds `app/` (the bundle) and `blobs/` (the layers). */
  buildDir: string;
  /** The app layer's file times (seconds). */
  epoch: number;
  onProgress?: (message: string) => void;
}

export interface AppLayers {
  manifest: BuildManifest;
  config: LoadedProjectConfig["config"];
  /** The externals layer (when the project has native or explicit externals), then the app layer. */
  layers: LayerBlob[];
}

async function appLayerEntries(appDir: string, manifest: BuildManifest): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  for (const name of (await readdir(appDir)).sort()) {
    entries.push({ type: "file", path: `app/${name}`, source: join(appDir, name), size: (await stat(join(appDir, name))).size });
  }
  entries.push({ type: "file", path: "app/stasis-manifest.json", data: Buffer.from(JSON.stringify(manifest, null, 2) + "\n") });
  return entries;
}

/**
 * Everything of a build that runs the project's code or reads its files: load the config, bundle,
 * index the tasks, write the externals and app layers. It runs inside the build sandbox
 * (isolated-build/): the parent only adopts the layers it wrote, after checking them.
 */
export async function buildAppLayers(o: BuildAppLayersOptions): Promise<AppLayers> {
  const projectDir = resolve(o.projectDir);
  const blobsDir = join(o.buildDir, "blobs");
  const loaded = await loadProjectConfig(projectDir);
  const bundle = await bundleProject({ projectDir, outDir: join(o.buildDir, "app"), onProgress: o.onProgress, loaded });
  const layers: LayerBlob[] = [];
  if (bundle.externals.length > 0) {
    o.onProgress?.(`externals layer: ${bundle.externals.map((e) => `${e.name}@${e.version}`).join(", ")}`);
    layers.push(await writeLayer(await externalsLayerEntries(bundle.externals), { blobsDir, mtime: 0 }));
  }
  layers.push(await writeLayer(await appLayerEntries(bundle.appDir, bundle.manifest), { blobsDir, mtime: o.epoch }));
  return { manifest: bundle.manifest, config: loaded.config, layers };
}
