import { z } from "zod";

export const MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json";
export const MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json";
export const MEDIA_TYPE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
export const MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const MEDIA_TYPE_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

const Digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, "a sha256 digest");

export const Descriptor = z.object({
  mediaType: z.string(),
  digest: Digest,
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: z.object({ architecture: z.string(), os: z.string() }).passthrough().optional(),
});
export type Descriptor = z.infer<typeof Descriptor>;

export const OciManifest = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  config: Descriptor,
  layers: z.array(Descriptor),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type OciManifest = z.infer<typeof OciManifest>;

export const OciIndex = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(Descriptor),
});
export type OciIndex = z.infer<typeof OciIndex>;

export const OciImageConfig = z
  .object({
    created: z.string().optional(),
    architecture: z.string(),
    os: z.string(),
    config: z
      .object({
        Entrypoint: z.array(z.string()).nullish(),
        Cmd: z.array(z.string()).nullish(),
        Env: z.array(z.string()).nullish(),
        WorkingDir: z.string().optional(),
        Labels: z.record(z.string(), z.string()).nullish(),
      })
      .passthrough()
      .optional(),
    rootfs: z.object({ type: z.literal("layers"), diff_ids: z.array(Digest) }),
    history: z.array(z.record(z.string(), z.unknown())).optional(),
  })
  .passthrough();
export type OciImageConfig = z.infer<typeof OciImageConfig>;

/** Parses JSON bytes with a schema; a failure names what was being read. */
export function parseJson<T>(schema: z.ZodType<T>, bytes: Buffer | string, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString());
  } catch (err) {
    throw new Error(`${what} is not JSON: ${(err as Error).message}`);
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new Error(`${what}: ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return result.data;
}
