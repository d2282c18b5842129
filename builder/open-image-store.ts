import { resolve } from "node:path";
import { BuilderError } from "./errors.ts";
import type { ImageStore } from "./image-store.ts";
import { createLayoutImageStore, LAYOUT_REF_PREFIX, parseLayoutRef } from "./layout-store.ts";
import type { RegistryAuth } from "./registry-client.ts";
import { createRegistryImageStore, parseRegistryRef } from "./registry-store.ts";

export interface OpenImageStoreOptions {
  auth?: RegistryAuth;
  /** Use plain HTTP for this registry. Loopback hosts always use HTTP. */
  insecure?: boolean;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/;

/** Registry credentials from STASIS_REGISTRY_USERNAME/PASSWORD or STASIS_REGISTRY_TOKEN. */
export function registryAuthFromEnv(env: NodeJS.ProcessEnv = process.env): RegistryAuth | undefined {
  if (env.STASIS_REGISTRY_TOKEN) return { token: env.STASIS_REGISTRY_TOKEN };
  if (env.STASIS_REGISTRY_USERNAME && env.STASIS_REGISTRY_PASSWORD) return { username: env.STASIS_REGISTRY_USERNAME, password: env.STASIS_REGISTRY_PASSWORD };
  return undefined;
}

/** Picks the store an image reference lives in: `oci-layout:<dir>…` or `host[:port]/repo…`. */
export function openImageStore(ref: string, options: OpenImageStoreOptions = {}): ImageStore {
  if (ref.startsWith(LAYOUT_REF_PREFIX)) return createLayoutImageStore(parseLayoutRef(ref).dir);
  const { host, repository } = parseRegistryRef(ref);
  return registryStoreFor(ref, host, repository, options);
}

/**
 * The store to push new images to: `oci-layout:<dir>` (or a plain directory path) or a registry
 * repository `host[:port]/repo` — no tag or digest needed, unlike `openImageStore`.
 */
export function openImageRepository(target: string, options: OpenImageStoreOptions = {}): ImageStore {
  if (target.startsWith(LAYOUT_REF_PREFIX)) return createLayoutImageStore(resolve(target.slice(LAYOUT_REF_PREFIX.length).replace(/@sha256:.*$/, "")));
  if (target.startsWith("/") || target.startsWith(".")) return createLayoutImageStore(resolve(target));
  const slash = target.indexOf("/");
  if (slash <= 0) throw new BuilderError("BAD_REF", `an image repository looks like host[:port]/name (e.g. ghcr.io/acme/tasks) or oci-layout:<dir>, got ${JSON.stringify(target)}`);
  const host = target.slice(0, slash);
  const repository = target.slice(slash + 1).replace(/[:@].*$/, "");
  return registryStoreFor(target, host, repository, options);
}

function registryStoreFor(ref: string, host: string, repository: string, options: OpenImageStoreOptions): ImageStore {
  if (!host.includes(".") && !host.includes(":") && host !== "localhost") throw new BuilderError("BAD_REF", `image reference needs a registry host: ${ref}`);
  const insecure = options.insecure ?? (LOOPBACK.test(host) || process.env.STASIS_REGISTRY_INSECURE === "1");
  return createRegistryImageStore({ url: `${insecure ? "http" : "https"}://${host}`, repository, auth: options.auth ?? registryAuthFromEnv() });
}
