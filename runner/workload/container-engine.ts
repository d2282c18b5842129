import { createWriteStream } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import Docker from "dockerode";
import { toError } from "./errors.ts";

/** Where Podman's rootful service (and Docker) listen by default. */
export const DEFAULT_CONTAINER_SOCKETS = ["/run/podman/podman.sock", "/var/run/docker.sock"];
/** The libpod API version whose checkpoint/restore endpoints the runtime uses (Podman ≥ 4). */
const LIBPOD = "/v4.0.0/libpod";

export interface EngineInfo {
  /** "podman" when the socket answers libpod's endpoints (checkpoints need them), else "docker". */
  kind: "podman" | "docker";
  version: string;
}

export interface CreateContainerSpec {
  name: string;
  image: string;
  cmd: string[];
  workingDir: string;
  binds: string[];
  labels: Record<string, string>;
  memoryMb?: number;
  cpu?: number;
}

/**
 * The container engine behind a Docker-compatible socket, through dockerode: containers through the
 * Docker Engine API, and images, checkpoints and restores through Podman's libpod endpoints on the same
 * socket (the Docker API has no export of a checkpoint with its writable layer).
 */
export function createEngine(socketPath: string) {
  const docker = new Docker({ socketPath });

  /** A libpod call: POST with a query, optionally a file/stream as the body, the answer as a stream or JSON. */
  function libpod<T>(path: string, query: Record<string, string | boolean>, options: { body?: Readable; stream?: boolean; method?: string } = {}): Promise<T> {
    return new Promise((resolve, reject) => {
      docker.modem.dial(
        {
          path: `${LIBPOD}${path}?`,
          method: options.method ?? "POST",
          options: { _query: query },
          file: options.body,
          isStream: options.stream ?? false,
          statusCodes: { 200: true, 201: true, 204: true, 400: "bad parameter", 404: "no such container or image", 409: "conflict", 500: "server error" },
        } as never,
        (err: unknown, data: unknown) => (err ? reject(engineError(err)) : resolve(data as T)),
      );
    });
  }

  return {
    docker,

    async info(): Promise<EngineInfo> {
      const version = (await docker.version().catch((err: unknown) => {
        throw new Error(`no container engine answers on ${socketPath}: ${toError(err).message}`);
      })) as { Version: string; Components?: Array<{ Name: string }> };
      const podman = (version.Components ?? []).some((c) => /podman/i.test(c.Name));
      return { kind: podman ? "podman" : "docker", version: version.Version };
    },

    /** The local image whose manifest digest is `digest`, if present: its id. */
    async findImage(digest: string): Promise<string | null> {
      const images = await libpod<Array<{ Id: string; Digest?: string; RepoDigests?: string[] }>>("/images/json", {}, { method: "GET" });
      const found = images.find((i) => i.Digest === digest || (i.RepoDigests ?? []).some((d) => d.endsWith(`@${digest}`)));
      return found?.Id ?? null;
    },

    /** Pulls `ref` (`host/repo@sha256:…`); `tlsVerify: false` for a plain-http registry. */
    async pull(ref: string, tlsVerify: boolean): Promise<void> {
      const stream = await libpod<Readable>("/images/pull", { reference: ref, tlsVerify, quiet: true, policy: "missing" }, { stream: true });
      let text = "";
      for await (const chunk of stream) text += String(chunk);
      const error = /"error"\s*:\s*"([^"]+)"/.exec(text)?.[1];
      if (error) throw new Error(`podman could not pull ${ref}: ${error}`);
    },

    /** Loads an image from an OCI archive (a tarred OCI layout) streamed as the body. */
    async load(archive: Readable): Promise<void> {
      await libpod<unknown>("/images/load", {}, { body: archive });
    },

    async create(spec: CreateContainerSpec): Promise<Docker.Container> {
      const mb = 1024 * 1024;
      return docker.createContainer({
        name: spec.name,
        Image: spec.image,
        // The whole command line: the image's own entrypoint (the worker) is what the shim starts.
        Entrypoint: spec.cmd,
        Cmd: [],
        WorkingDir: spec.workingDir,
        Env: ["UV_USE_IO_URING=0"],
        Labels: spec.labels,
        HostConfig: {
          // The host network, as the runc workload: a task's outbound connections survive a checkpoint (--tcp-established).
          NetworkMode: "host",
          Binds: spec.binds,
          CapDrop: ["ALL"],
          CapAdd: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
          SecurityOpt: ["no-new-privileges"],
          ...(spec.memoryMb ? { Memory: spec.memoryMb * mb, MemorySwap: spec.memoryMb * mb } : {}),
          ...(spec.cpu ? { NanoCpus: Math.round(spec.cpu * 1e9) } : {}),
        },
      });
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
  };
}

export type ContainerEngine = ReturnType<typeof createEngine>;

/** dockerode's errors carry the engine's JSON answer; its `message` (or `cause`) says what went wrong. */
function engineError(err: unknown): Error {
  const e = toError(err) as Error & { json?: { message?: string; cause?: string } | null; statusCode?: number };
  const said = e.json?.message ?? e.json?.cause;
  return said ? new Error(`${said} (HTTP ${e.statusCode ?? "?"})`, { cause: err }) : e;
}
