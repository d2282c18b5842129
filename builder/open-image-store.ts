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
  if (!host.includes(".") && !host.includes(":") && host !== "localhost") throw new BuilderError("BAD_REF", `image reference needs a registry host: ${ref}`);
  const insecure = options.insecure ?? (LOOPBACK.test(host) || process.env.STASIS_REGISTRY_INSECURE === "1");
  return createRegistryImageStore({ url: `${insecure ? "http" : "https"}://${host}`, repository, auth: options.auth ?? registryAuthFromEnv() });
}
