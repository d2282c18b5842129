import type { Readable } from "node:stream";
import Docker from "dockerode";
import { createDockerEngine, type DockerEngine } from "./docker-engine.ts";
import { toError } from "./errors.ts";
import { createPodmanEngine, type PodmanEngine } from "./podman-engine.ts";

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
 * What the container runtime needs of an engine. Containers themselves go through the Docker Engine
 * API on either engine (`docker`, `create`); images and checkpoints differ: Podman's libpod endpoints
 * (podman-engine.ts) or Docker's own API (docker-engine.ts).
 */
export interface ContainerEngine {
  readonly kind: "podman" | "docker";
  readonly version: string;
  readonly docker: Docker;
  /** The local image whose manifest digest is `digest` (or, for Docker, whose config is `configDigest`), if present: its id. */
  findImage(digest: string, configDigest?: string): Promise<string | null>;
  /** Pulls `ref` (`host/repo@sha256:…`); `tlsVerify: false` for a plain-http registry. */
  pull(ref: string, tlsVerify: boolean): Promise<void>;
  /** Loads an image archive in the engine's format (`archiveFormat`) streamed as the body. */
  load(archive: Readable): Promise<void>;
  /** What `load` takes: an OCI archive (Podman) or a `docker save` archive (Docker 20.10 reads no OCI layout). */
  readonly archiveFormat: "oci" | "docker";
  create(spec: CreateContainerSpec): Promise<Docker.Container>;
}

/** The engine on `socketPath`, by what it says it is: Podman (its components name it) or Docker. */
export async function openEngine(socketPath: string): Promise<PodmanEngine | DockerEngine> {
  const docker = new Docker({ socketPath });
  const version = (await docker.version().catch((err: unknown) => {
    throw new Error(`no container engine answers on ${socketPath}: ${toError(err).message}`);
  })) as { Version: string; Components?: Array<{ Name: string }> };
  const podman = (version.Components ?? []).some((c) => /podman/i.test(c.Name));
  return podman ? createPodmanEngine(docker, version.Version) : createDockerEngine(docker, version.Version);
}

/** The task container: the shim as its command, the host network, no capabilities beyond a few, the machine's limits. */
export function createContainer(docker: Docker, spec: CreateContainerSpec): Promise<Docker.Container> {
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
}

/** dockerode's errors carry the engine's JSON answer; its `message` (or `cause`) says what went wrong. */
export function engineError(err: unknown): Error {
  const e = toError(err) as Error & { json?: { message?: string; cause?: string } | null; statusCode?: number };
  const said = e.json?.message ?? e.json?.cause;
  return said ? new Error(`${said} (HTTP ${e.statusCode ?? "?"})`, { cause: err }) : e;
}

/** An API call dockerode has no method for: a query, optionally a stream as the body, the answer as a stream or JSON. */
export function dial<T>(docker: Docker, path: string, query: Record<string, string | boolean>, options: { body?: Readable | object; stream?: boolean; method?: string } = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: `${path}?`,
        method: options.method ?? "POST",
        // Without a `_body`, docker-modem sends the options themselves as the body (Docker's start refuses any body).
        options: { _query: query, _body: options.body && !isReadable(options.body) ? options.body : {} },
        file: isReadable(options.body) ? options.body : undefined,
        isStream: options.stream ?? false,
        statusCodes: { 200: true, 201: true, 204: true, 400: "bad parameter", 404: "no such container or image", 409: "conflict", 500: "server error" },
      } as never,
      (err: unknown, data: unknown) => (err ? reject(engineError(err)) : resolve(data as T)),
    );
  });
}

const isReadable = (body: unknown): body is Readable => typeof (body as Readable | undefined)?.pipe === "function";
