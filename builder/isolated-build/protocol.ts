import { z } from "zod";
import { BuildManifest, StasisConfig } from "../../schemas/index.ts";
import { MEDIA_TYPE_LAYER_GZIP } from "../oci-types.ts";

/** What the parent asks the build child to do (its one argument, JSON). */
export const SandboxRequest = z.discriminatedUnion("mode", [
  z.object({ mode: z.literal("config"), projectDir: z.string() }),
  z.object({ mode: z.literal("build"), projectDir: z.string(), buildDir: z.string(), epoch: z.number().int().min(0) }),
]);
export type SandboxRequest = z.infer<typeof SandboxRequest>;

const Digest = z.string().regex(/^sha256:[a-f0-9]{64}$/);
const RelativeDir = z.string().min(1).refine((d) => !d.startsWith("/") && !d.split("/").includes(".."), "a task dir is relative to the project, without '..'");
export const SandboxConfig = StasisConfig.extend({ dirs: z.array(RelativeDir) });

/**
 * What the child says, one JSON object per line on fd 3. Untrusted: the child ran the project's
 * code. The parent parses every line with this schema and re-hashes every layer it adopts.
 */
export const SandboxMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("progress"), message: z.string().max(2000) }),
  z.object({ type: z.literal("config"), config: SandboxConfig, configPath: z.string().nullable() }),
  z.object({
    type: z.literal("built"),
    manifest: BuildManifest,
    config: SandboxConfig,
    layers: z.array(z.object({ digest: Digest, diffId: Digest, size: z.number().int().min(0), mediaType: z.literal(MEDIA_TYPE_LAYER_GZIP) })).min(1).max(2),
  }),
  z.object({ type: z.literal("error"), code: z.string().max(100), message: z.string().max(20_000) }),
]);
export type SandboxMessage = z.infer<typeof SandboxMessage>;
