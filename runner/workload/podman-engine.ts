import { createWriteStream } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type Docker from "dockerode";
import { createContainer, dial, type ContainerEngine } from "./container-engine.ts";

/** The libpod API version whose image, checkpoint and restore endpoints are used (Podman ≥ 4). */
const LIBPOD = "/v4.0.0/libpod";

/**
 * Podman behind its Docker-compatible socket: containers through the Docker Engine API, images,
 * checkpoints and restores through libpod's endpoints on the same socket (the Docker API has no
 * export of a checkpoint with its writable layer).
 */
export function createPodmanEngine(docker: Docker, version: string) {
  const libpod = <T>(path: string, query: Record<string, string | boolean>, options: { body?: Readable; stream?: boolean; method?: string } = {}) => dial<T>(docker, `${LIBPOD}${path}`, query, options);

  return {
    kind: "podman" as const,
    version,
    docker,
    archiveFormat: "oci" as const,
    create: (spec) => createContainer(docker, spec),

    async findImage(digest: string): Promise<string | null> {
      const images = await libpod<Array<{ Id: string; Digest?: string; RepoDigests?: string[] }>>("/images/json", {}, { method: "GET" });
      const found = images.find((i) => i.Digest === digest || (i.RepoDigests ?? []).some((d) => d.endsWith(`@${digest}`)));
      return found?.Id ?? null;
    },

    async pull(ref: string, tlsVerify: boolean): Promise<void> {
      const stream = await libpod<Readable>("/images/pull", { reference: ref, tlsVerify, quiet: true, policy: "missing" }, { stream: true });
      let text = "";
      for await (const chunk of stream) text += String(chunk);
      const error = /"error"\s*:\s*"([^"]+)"/.exec(text)?.[1];
      if (error) throw new Error(`podman could not pull ${ref}: ${error}`);
    },

    async load(archive: Readable): Promise<void> {
      await libpod<unknown>("/images/load", {}, { body: archive });
    },

    /** `checkpoint?export=true`: the container's CRIU images and writable layer as one tar, written to `file`. */
    async checkpoint(name: string, file: string, leaveRunning: boolean): Promise<void> {
      const query = { export: true, tcpEstablished: true, fileLocks: true, leaveRunning, ignoreVolumes: true };
      const stream = await libpod<Readable>(`/containers/${encodeURIComponent(name)}/checkpoint`, query, { stream: true });
      await pipeline(stream, createWriteStream(file));
    },

    /** `restore?import=true`: a new container `name` from an exported checkpoint tar. */
    async restore(archive: Readable, name: string): Promise<void> {
      const query = { import: true, name, tcpEstablished: true, fileLocks: true, ignoreVolumes: true, ignoreStaticIP: true, ignoreStaticMAC: true };
      await libpod<unknown>(`/containers/${encodeURIComponent(name)}/restore`, query, { body: archive });
    },
  } satisfies ContainerEngine & Record<string, unknown>;
}

export type PodmanEngine = ReturnType<typeof createPodmanEngine>;
