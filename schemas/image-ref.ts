import { z } from "zod";

/**
 * Image references a deployment may name, and the allow-list of where images may come from
 * (pure: the server checks a deployment's imageRef with it, the runner every ref it pulls).
 *
 * - `oci-layout:<absolute dir>@sha256:<64 hex>` — an OCI image-layout dir on the runner's host;
 * - `<registry host[:port]>/<repository>@sha256:<64 hex>` — a registry (a host has a `.` or a
 *   port, or is `localhost`).
 */
const DIGEST = "sha256:[a-f0-9]{64}";
const LAYOUT_RE = new RegExp(`^oci-layout:(/[^@\\s]*)@(${DIGEST})$`);
const COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const HOST = "(?:[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)*(?::\\d{1,5})?|\\[[0-9a-fA-F:]+\\](?::\\d{1,5})?)";
const REGISTRY_RE = new RegExp(`^(${HOST})/(${COMPONENT}(?:/${COMPONENT})*)@(${DIGEST})$`);

export type ParsedImageRef = { kind: "layout"; dir: string; digest: string } | { kind: "registry"; host: string; repository: string; digest: string };

export function parseImageRef(ref: string): ParsedImageRef | null {
  const layout = LAYOUT_RE.exec(ref);
  if (layout) {
    const dir = layout[1]!;
    if (dir.split("/").some((part) => part === ".." || part === ".")) return null;
    return { kind: "layout", dir: dir.length > 1 ? dir.replace(/\/+$/, "") : dir, digest: layout[2]! };
  }
  const registry = REGISTRY_RE.exec(ref);
  if (!registry) return null;
  const host = registry[1]!.toLowerCase();
  if (!host.includes(".") && !host.includes(":") && host !== "localhost") return null;
  return { kind: "registry", host, repository: registry[2]!, digest: registry[3]! };
}

export const ImageRef = z
  .string()
  .max(2048)
  .refine((ref) => parseImageRef(ref) !== null, "imageRef is oci-layout:<absolute dir>@sha256:<64 hex> or <registry host[:port]>/<repository>@sha256:<64 hex>");

/** One allowed source: a registry (optionally only repositories under a prefix) or layout dirs. */
export type AllowedImageSource = { kind: "registry"; host: string; prefix: string } | { kind: "layout"; dir: string | "*" };

/**
 * `STASIS_ALLOWED_REGISTRIES`: comma-separated `host[:port][/repository-prefix]`,
 * `oci-layout:<dir>` (layouts under that dir) or `oci-layout:*`. Unset: the registry in
 * STASIS_REGISTRY (when set) and local OCI layout dirs.
 */
export function allowedImageSources(list: string | undefined, defaultRegistry: string | undefined): AllowedImageSource[] {
  const text = list?.trim() ? list : [defaultRegistry, "oci-layout:*"].filter(Boolean).join(",");
  const out: AllowedImageSource[] = [];
  for (const raw of text.split(",").map((e) => e.trim()).filter(Boolean)) {
    if (raw.startsWith("oci-layout:")) {
      const dir = raw.slice("oci-layout:".length);
      if (dir !== "*" && !dir.startsWith("/")) throw new Error(`allowed image source ${JSON.stringify(raw)}: a layout dir is absolute (or oci-layout:*)`);
      out.push({ kind: "layout", dir: dir === "*" ? "*" : dir.replace(/\/+$/, "") || "/" });
      continue;
    }
    const slash = raw.indexOf("/");
    const host = (slash < 0 ? raw : raw.slice(0, slash)).toLowerCase();
    if (!new RegExp(`^${HOST}$`).test(host)) throw new Error(`allowed image source ${JSON.stringify(raw)}: not host[:port][/prefix] or oci-layout:<dir>`);
    out.push({ kind: "registry", host, prefix: slash < 0 ? "" : raw.slice(slash + 1).replace(/\/+$/, "") });
  }
  return out;
}

export function describeSources(sources: AllowedImageSource[]): string {
  return sources.map((s) => (s.kind === "layout" ? `oci-layout:${s.dir}` : s.prefix ? `${s.host}/${s.prefix}` : s.host)).join(", ") || "nothing";
}

const under = (path: string, dir: string) => dir === "/" || path === dir || path.startsWith(dir + "/");

/** Null when `ref` may be used, else why not (naming the rule). */
export function imageRefRefusal(ref: string, sources: AllowedImageSource[]): string | null {
  const parsed = parseImageRef(ref);
  if (!parsed) return `image reference ${JSON.stringify(ref.slice(0, 200))} is not oci-layout:<absolute dir>@sha256:<64 hex> or <registry host[:port]>/<repository>@sha256:<64 hex>`;
  const ok = sources.some((s) =>
    parsed.kind === "layout"
      ? s.kind === "layout" && (s.dir === "*" || under(parsed.dir, s.dir))
      : s.kind === "registry" && s.host === parsed.host && (s.prefix === "" || under(parsed.repository, s.prefix)),
  );
  if (ok) return null;
  const where = parsed.kind === "layout" ? `the OCI layout dir ${parsed.dir}` : `the registry ${parsed.host}/${parsed.repository}`;
  return `images may come only from configured registries (STASIS_ALLOWED_REGISTRIES, default STASIS_REGISTRY and local layout dirs): ${where} is not one of ${describeSources(sources)}`;
}
