import type { Readable } from "node:stream";
import type Docker from "dockerode";
import { createContainer, dial, type ContainerEngine } from "./container-engine.ts";

/**
 * Docker (20.10 and later) through its Engine API. It loads `docker save` archives only (no OCI
 * layout before Docker 25), and a loaded image has no digest of its manifest: it is found by its id,
 * which is its config's digest (Docker checks every layer against the config's diff ids as it loads).
 * A pulled image is found by its repo digest.
 */
export function createDockerEngine(docker: Docker, version: string) {
  /** The text of a streamed answer (pull, load), with the error it reports if any. */
  async function drain(stream: Readable, what: string): Promise<void> {
    let text = "";
    for await (const chunk of stream) text += String(chunk);
    const error = /"error"\s*:\s*"((?:[^"\\]|\\.)+)"/.exec(text)?.[1];
    if (error) throw new Error(`docker could not ${what}: ${error}`);
  }

  return {
    kind: "docker" as const,
    version,
    docker,
    archiveFormat: "docker" as const,
    create: (spec) => createContainer(docker, spec),

    async findImage(digest: string, configDigest?: string): Promise<string | null> {
      if (configDigest) {
        const image = await docker.getImage(configDigest).inspect().catch(() => null);
        return image?.Id ?? null;
      }
      const images = await docker.listImages({ digests: true });
      return images.find((i) => (i.RepoDigests ?? []).some((d) => d.endsWith(`@${digest}`)))?.Id ?? null;
    },

    async pull(ref: string, tlsVerify: boolean): Promise<void> {
      // Docker itself decides whether a registry is plain http: loopback ones are by default, others need dockerd's --insecure-registry.
      await drain(await dial<Readable>(docker, "/images/create", { fromImage: ref }, { stream: true }), `pull ${ref}${tlsVerify ? "" : " (a plain-http registry off loopback must be in dockerd's --insecure-registry)"}`);
    },

    async load(archive: Readable): Promise<void> {
      await drain(await dial<Readable>(docker, "/images/load", { quiet: true }, { body: archive, stream: true }), "load the image");
    },
  } satisfies ContainerEngine & Record<string, unknown>;
}

export type DockerEngine = ReturnType<typeof createDockerEngine>;
