import type { z } from "zod";
import { buildImage, type BuiltProjectImage } from "./build-image.ts";
import type { ImageStore } from "./image-store.ts";
import type { CommitInfo, DeploymentView } from "../schemas/index.ts";
import { callStasisApi as apiCall } from "./stasis-api.ts";

export interface DeployProjectOptions {
  projectDir: string;
  apiUrl: string;
  apiKey: string;
  store: ImageStore;
  promote: boolean;
  commit?: z.infer<typeof CommitInfo>;
  /** Skip the Node runtime layer (process-mode runners use the host's Node): much faster dev rebuilds. */
  withRuntime?: boolean;
  /** A runtime image (`host/repo@sha256:…`) to build on instead of the local Node; default STASIS_RUNTIME_IMAGE. */
  runtimeImage?: string;
  onProgress?: (message: string) => void;
  /** Skip the deploy (return null) when the bundle's content hash equals this one. */
  unchangedFrom?: string | null;
  /**
   * Aborting stops before the next step; a reserved version is then marked CANCELED (e.g. superseded
   * by a newer push), or FAILED when the abort reason is a TimeoutError (a build time limit).
   */
  signal?: AbortSignal;
  /** Files and dirs the build (which runs the project's code) must not see: state dirs, key files. */
  hidePaths?: string[];
}

/**
 * Build → (unchanged? stop) → reserve a version → push the image tagged with that version → finish the deployment.
 * A build or push that fails marks the deployment FAILED with the reason; nothing is half-deployed.
 */
export async function deployProject(options: DeployProjectOptions): Promise<(DeploymentView & { contentHash: string }) | null> {
  const { apiUrl, apiKey, onProgress = () => {} } = options;
  const image = await buildImage({ projectDir: options.projectDir, onProgress, withRuntime: options.withRuntime ?? true, ...(options.runtimeImage ? { base: { kind: "registry" as const, ref: options.runtimeImage } } : {}), labels: commitLabels(options.commit), sandbox: { hidePaths: options.hidePaths, signal: options.signal } });
  try {
    return await registerImage(options, image);
  } finally {
    await image.dispose();
  }
}

async function registerImage(options: DeployProjectOptions, image: BuiltProjectImage): Promise<(DeploymentView & { contentHash: string }) | null> {
  const { apiUrl, apiKey, onProgress = () => {} } = options;
  const contentHash = image.buildManifest.contentHash;
  if (options.unchangedFrom && options.unchangedFrom === contentHash) return null;
  options.signal?.throwIfAborted();
  const started = await apiCall<DeploymentView>(apiUrl, apiKey, "POST", "/api/v1/deployments/start", { commit: options.commit });
  onProgress(`deploying version ${started.version} to ${started.environment}`);
  try {
    const tag = `${started.environment.replace(/[^a-zA-Z0-9_.-]/g, "-")}-${started.version}`;
    const pushed = await options.store.push(image, tag, onProgress);
    options.signal?.throwIfAborted();
    const finished = await apiCall<DeploymentView>(apiUrl, apiKey, "POST", `/api/v1/deployments/${started.id}/finish`, {
      imageRef: pushed.ref,
      imageDigest: pushed.digest,
      manifest: image.buildManifest,
      promote: options.promote,
    });
    return { ...finished, contentHash };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const status = options.signal?.aborted && (options.signal.reason as Error | undefined)?.name !== "TimeoutError" ? "CANCELED" : "FAILED";
    await apiCall(apiUrl, apiKey, "POST", `/api/v1/deployments/${started.id}/fail`, { reason, status }).catch(() => {});
    throw error;
  }
}

function commitLabels(commit: DeployProjectOptions["commit"]): Record<string, string> {
  const labels: Record<string, string> = {};
  if (commit?.sha) labels["org.opencontainers.image.revision"] = commit.sha;
  if (commit?.branch) labels["stasis.branch"] = commit.branch;
  if (commit?.repository) labels["org.opencontainers.image.source"] = commit.repository;
  return labels;
}
