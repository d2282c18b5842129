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

const hostOf = (registry: string | undefined) => registry?.trim().split("/")[0]?.toLowerCase() || null;

/**
 * The one registry host the environment's credentials belong to: STASIS_REGISTRY_AUTH_HOST, else
 * the host of STASIS_REGISTRY, else the only registry host STASIS_ALLOWED_REGISTRIES names.
 */
export function registryAuthHost(env: NodeJS.ProcessEnv = process.env): string | null {
  const explicit = hostOf(env.STASIS_REGISTRY_AUTH_HOST) ?? hostOf(env.STASIS_REGISTRY);
  if (explicit) return explicit;
  const hosts = new Set((env.STASIS_ALLOWED_REGISTRIES ?? "").split(",").map((e) => e.trim()).filter((e) => e && !e.startsWith("oci-layout:")).map(hostOf));
  return hosts.size === 1 ? [...hosts][0]! : null;
}

/**
 * Registry credentials from STASIS_REGISTRY_USERNAME/PASSWORD or STASIS_REGISTRY_TOKEN, for `host`
 * only when it is the host they are bound to (registryAuthHost): an image reference naming another
 * host gets none. `operatorTarget`: the host is the operator's own choice (`--registry`, a base
 * image), which counts as configured when no host is bound.
 */
export function registryAuthFromEnv(env: NodeJS.ProcessEnv, host: string, operatorTarget = false): RegistryAuth | undefined {
  const bound = registryAuthHost(env);
  if (bound ? bound !== host.toLowerCase() : !operatorTarget) return undefined;
  if (env.STASIS_REGISTRY_TOKEN) return { token: env.STASIS_REGISTRY_TOKEN };
  if (env.STASIS_REGISTRY_USERNAME && env.STASIS_REGISTRY_PASSWORD) return { username: env.STASIS_REGISTRY_USERNAME, password: env.STASIS_REGISTRY_PASSWORD };
  return undefined;
}

/** Picks the store an image reference lives in: `oci-layout:<dir>…` or `host[:port]/repo…`. */
export function openImageStore(ref: string, options: OpenImageStoreOptions = {}): ImageStore {
  if (ref.startsWith(LAYOUT_REF_PREFIX)) return createLayoutImageStore(parseLayoutRef(ref).dir);
  const { host, repository } = parseRegistryRef(ref);
  return registryStoreFor(ref, host, repository, options, false);
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
  return registryStoreFor(target, host, repository, options, true);
}

/** `http://host` for loopback hosts (or `insecure`, or STASIS_REGISTRY_INSECURE=1), else `https://host`. */
export function registryBaseUrl(host: string, insecure?: boolean): string {
  return `${(insecure ?? (LOOPBACK.test(host) || process.env.STASIS_REGISTRY_INSECURE === "1")) ? "http" : "https"}://${host}`;
}

function registryStoreFor(ref: string, host: string, repository: string, options: OpenImageStoreOptions, operatorTarget: boolean): ImageStore {
  if (!host.includes(".") && !host.includes(":") && host !== "localhost") throw new BuilderError("BAD_REF", `image reference needs a registry host: ${ref}`);
  return createRegistryImageStore({ url: registryBaseUrl(host, options.insecure), repository, auth: options.auth ?? registryAuthFromEnv(process.env, host, operatorTarget) });
}
