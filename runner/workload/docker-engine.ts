import { cp, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import type Docker from "dockerode";
import { createContainer, dial, type ContainerEngine, type CreateContainerSpec } from "./container-engine.ts";
import { removeContainerdCopy } from "./containerd-leftovers.ts";

/** The name a restore gives the copied checkpoint in the container's own dir. */
const CHECKPOINT_ID = "stasis";
/** A file in that copy naming the container it restores into. */
const RESTORE_MARK = "stasis-restore";

/**
 * Docker (20.10 and later) through its Engine API. It is handed `docker save` archives (20.10 loads
 * no OCI layout), and a loaded image has no digest of its manifest: it is found by its id,
 * which is its config's digest (Docker checks every layer against the config's diff ids as it loads).
 * A pulled image is found by its repo digest. Checkpoints need `dockerd --experimental`: CRIU's
 * images only (not the container's writable layer), which restore into a new container made like the
 * dumped one. Docker's API passes CRIU no options: established TCP connections and file locks are
 * refused unless /etc/criu/runc.conf (which runc hands CRIU) allows them.
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

    /** Whether this dockerd runs with --experimental (its checkpoint API is there only then). */
    async experimental(): Promise<boolean> {
      return Boolean(((await docker.info()) as { ExperimentalBuild?: boolean }).ExperimentalBuild);
    },

    /**
     * What the container changed in its own filesystem, which Docker's checkpoint leaves out: the
     * paths added, changed or deleted, besides the mount points of its binds (and the dirs holding them).
     */
    async writableChanges(name: string, binds: string[]): Promise<string[]> {
      const changes = ((await docker.getContainer(name).changes()) ?? []) as Array<{ Path: string; Kind: number }>;
      const mountPoints = binds.map((b) => b.split(":")[1]!);
      return changes.map((c) => c.Path).filter((p) => !mountPoints.some((m) => m === p || m.startsWith(`${p}/`)));
    },

    /** CRIU's images of container `name`, written into the dir `target` (Docker takes a dir of the caller's on dump). */
    async checkpoint(name: string, target: string, leaveRunning: boolean): Promise<void> {
      const body = { CheckpointID: path.basename(target), CheckpointDir: path.dirname(target), Exit: !leaveRunning };
      await dial<unknown>(docker, `/containers/${encodeURIComponent(name)}/checkpoints`, {}, { body }).catch(async (err: Error) => {
        throw new Error(`${err.message}${await criuSaid(err.message)}`, { cause: err });
      });
    },

    /**
     * A new container from `spec`, started from CRIU's images in `images`. Docker restores only from
     * the container's own checkpoint dir (it refuses a custom one on start), so they are copied
     * there first. Docker hands containerd a tar of that dir, whose times are whole seconds: copied
     * in the second the dump was written, it is byte for byte the dump's own tar, which containerd
     * keeps until its next collection and so refuses as "already exists". A file naming the new
     * container (CRIU reads only the images it knows) makes every restore's tar its own.
     */
    async restore(images: string, spec: CreateContainerSpec): Promise<Docker.Container> {
      const container = await createContainer(docker, spec);
      const root = ((await docker.info()) as { DockerRootDir: string }).DockerRootDir;
      const { Id: id } = await container.inspect();
      const copy = path.join(root, "containers", id, "checkpoints", CHECKPOINT_ID);
      await cp(images, copy, { recursive: true });
      await writeFile(path.join(copy, RESTORE_MARK), `${id}\n`);
      await dial<unknown>(docker, `/containers/${id}/start`, { checkpoint: CHECKPOINT_ID });
      // The task runs by now: a copy that cannot be removed must not fail its restore (nor leave the container behind).
      await removeContainerdCopy(images).catch(() => []);
      return container;
    },
  } satisfies ContainerEngine & Record<string, unknown>;
}

export type DockerEngine = ReturnType<typeof createDockerEngine>;

/**
 * Docker's answer to a failed dump names CRIU's log (in containerd's state dir, on this host) but not
 * what went wrong: its error lines, to say why.
 */
async function criuSaid(message: string): Promise<string> {
  const log = /path= ?(\/\S+\.log)/.exec(message)?.[1];
  if (!log) return "";
  const text = await readFile(log, "utf8").catch(() => "");
  const errors = text.split("\n").filter((line) => /Error|rror \(/.test(line) && !/RLIMIT_NOFILE/.test(line)).slice(-3);
  return errors.length ? `; criu said: ${errors.map((l) => l.replace(/^\([\d.\s]+\)\s*/, "").trim()).join("; ")}` : "";
}
