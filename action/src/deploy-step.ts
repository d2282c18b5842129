import { deployProject, openImageRepository, type ImageStore } from "../../builder/index.ts";
import type { DeploymentView } from "../../schemas/index.ts";
import type { CommitDetails } from "./environment.ts";

export interface DeployStepOptions {
  projectDir: string;
  apiUrl: string;
  deployToken: string;
  registry?: string;
  registryAuth?: { username: string; password: string };
  promote: boolean;
  commit: CommitDetails;
  runtimeImage?: string;
  onProgress(message: string): void;
}

/** `registry` is `host[:port]/repository`, or `oci-layout:<dir>` when the server reads images from this machine. */
export function imageStoreFor(registry: string | undefined, auth?: { username: string; password: string }): ImageStore {
  if (!registry) throw new Error("set the registry input (host[:port]/repository, e.g. ghcr.io/acme/tasks): runners pull each version's image from it");
  return openImageRepository(registry, { auth });
}

/** The one deploy path (builder's deployProject): build, reserve a version, push, finish. */
export async function deployStep(o: DeployStepOptions): Promise<DeploymentView> {
  const store = imageStoreFor(o.registry, o.registryAuth);
  const commit = Object.fromEntries(Object.entries(o.commit).filter(([, v]) => v !== undefined && v !== ""));
  const deployment = await deployProject({ projectDir: o.projectDir, apiUrl: o.apiUrl, apiKey: o.deployToken, store, promote: o.promote, commit, runtimeImage: o.runtimeImage, onProgress: o.onProgress });
  if (!deployment) throw new Error("the build was skipped unexpectedly");
  return deployment;
}
