// One module that knows how to run untrusted build steps: every build path (stasis build, deploy,
// dev, the Action, the GitHub App) goes through here.
import { join } from "node:path";
import { StasisConfig, type BuildManifest } from "../../schemas/index.ts";
import type { LayerBlob } from "../layer.ts";
import type { LoadedProjectConfig } from "../load-config.ts";
import { adoptLayer } from "./adopt-layer.ts";
import { runSandboxed, type SandboxOptions } from "./run-sandboxed.ts";

export { isolationMode, type SandboxOptions } from "./run-sandboxed.ts";
export { sandboxEnv, BUILD_ENV_PASS, BUILD_ENV_PREFIX } from "./sandbox-env.ts";

/** `stasis.config.ts` loaded in the sandbox (it is the project's code). */
export async function loadProjectConfigIsolated(projectDir: string, options: SandboxOptions = {}): Promise<LoadedProjectConfig> {
  const sandbox = await runSandboxed(projectDir, (childProjectDir) => ({ mode: "config", projectDir: childProjectDir }), options);
  try {
    if (sandbox.result.type !== "config") throw new Error("the build answered a config request with a build");
    const config = { ...StasisConfig.parse(sandbox.result.config), dirs: sandbox.result.config.dirs };
    return { config, configPath: sandbox.result.configPath === null ? null : join(projectDir, sandbox.result.configPath.split("/").pop()!) };
  } finally {
    await sandbox.cleanup();
  }
}

export interface IsolatedAppLayers {
  manifest: BuildManifest;
  config: LoadedProjectConfig["config"];
  /** Adopted into `blobsDir` (checked and re-hashed). */
  layers: LayerBlob[];
}

/** Config, bundle, task index and the project's layers, built in the sandbox; the layers are adopted into `blobsDir`. */
export async function buildAppLayersIsolated(projectDir: string, blobsDir: string, epoch: number, options: SandboxOptions = {}): Promise<IsolatedAppLayers> {
  const sandbox = await runSandboxed(projectDir, (childProjectDir, buildDir) => ({ mode: "build", projectDir: childProjectDir, buildDir, epoch }), options);
  try {
    const result = sandbox.result;
    if (result.type !== "built" || !sandbox.hostBuildDir) throw new Error("the build answered a build request with a config");
    const layers: LayerBlob[] = [];
    for (const claimed of result.layers) layers.push(await adoptLayer(claimed, join(sandbox.hostBuildDir, "blobs"), blobsDir));
    return { manifest: result.manifest, config: { ...StasisConfig.parse(result.config), dirs: result.config.dirs }, layers };
  } finally {
    await sandbox.cleanup();
  }
}
