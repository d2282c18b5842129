// builder/: trigger/ dirs → esbuild bundle → task index → deterministic OCI image → image store.
export { loadProjectConfig, findTriggerDirs, findTaskDirs, CONFIG_FILES, type LoadedProjectConfig } from "./load-config.ts";
export { bundleProject, entrySource, type BundleProjectOptions, type BundleResult } from "./bundle.ts";
export { buildImage, type BuildImageOptions, type BuiltProjectImage, type BaseImageOption } from "./build-image.ts";
export { loadProjectConfigIsolated, isolationMode, sandboxEnv, BUILD_ENV_PREFIX, type SandboxOptions } from "./isolated-build/index.ts";
export { sandboxArgv, SANDBOX_MOUNT_SCRIPT, within, unreachableAncestor, readableByOthers, type SandboxMounts, type SandboxOp } from "./sandbox/index.ts";
export { buildToLayout, type BuildToLayoutOptions, type BuildToLayoutResult } from "./build-to-layout.ts";
export type { BuiltImage } from "./oci-image.ts";
export type { ImageStore, PushResult, FetchedImage, ProgressFn } from "./image-store.ts";
export { createLayoutImageStore, parseLayoutRef, LAYOUT_REF_PREFIX } from "./layout-store.ts";
export { createRegistryImageStore, parseRegistryRef, type RegistryImageStoreOptions } from "./registry-store.ts";
export { openImageStore, openImageRepository, registryAuthFromEnv, registryAuthHost, registryBaseUrl, type OpenImageStoreOptions } from "./open-image-store.ts";
export { createRegistryClient, type RegistryAuth, type RegistryClient, type RegistryClientOptions } from "./registry-client.ts";
export { hasBlob, uploadBlob, type UploadableBlob, type UploadBlobOptions } from "./registry-blobs.ts";
export { BuilderError, type BuilderErrorCode } from "./errors.ts";
export type { OciManifest, OciImageConfig } from "./oci-types.ts";
// The deploy path shared by the CLI, the Action and the GitHub App (written by the lead).
export { deployProject, type DeployProjectOptions } from "./deploy-project.ts";
export { callStasisApi, StasisApiCallError } from "./stasis-api.ts";
export { buildPlatformImage, PLATFORM_APP_DIR, type BuildPlatformImageOptions, type PlatformImage } from "./platform-image/index.ts";
export { buildRuntimeImage, type RuntimeImage } from "./runtime-image.ts";
