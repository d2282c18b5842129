import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { retargetArchive } from "./container-archive.ts";
// The engine (dockerode and its SSH, gRPC and protobuf packages) is loaded when a container runtime is created.
import type { ContainerEngine } from "./container-engine.ts";
import { createImageLoader, type ContainerImage } from "./container-image.ts";
import { LINK_MOUNT, openLink } from "./container-link.ts";
import { CONTAINER_ARCHIVE, DOCKER_CHECKPOINT, readContainerMeta, writeContainerMeta, type ContainerCheckpointMeta } from "./container-meta.ts";
import { trackContainer, type ContainerTask } from "./container-task.ts";
import { detectCriu } from "./criu.ts";
import { dirSize } from "./dir-size.ts";
import { WorkloadError } from "./errors.ts";
import { containerProcess } from "./runc-spec.ts";
import type { CheckpointSupport, TaskProcess, WorkloadRuntime } from "./types.ts";
import { pidAlive } from "./pid-alive.ts";

/** Where Podman's rootful service and Docker listen by default. */
const DEFAULT_CONTAINER_SOCKETS = ["/run/podman/podman.sock", "/var/run/docker.sock"];

export interface ContainerRuntimeOptions {
  /** The engine's API socket. Default: the first of /run/podman/podman.sock, /var/run/docker.sock that exists. */
  socketPath?: string;
  /** Default: detect (Podman, or Docker with --experimental, and CRIU >= 4.2 whose `criu check` passes). */
  checkpoints?: boolean;
  /** Link dirs of live containers and restore scratch. Default `$TMPDIR/stasis-container`. */
  workDir?: string;
  /** The image's unpacked rootfs and its ref/digest, for starts and restores that name none (tests). */
  rootfs?: string;
  image?: ContainerImage;
}

const CONNECT_TIMEOUT_MS = 60_000;
const LABEL = "stasis.workload";

/** The socket to use: the one given, else the first default that exists. */
export function containerSocket(given?: string): string {
  return given ?? DEFAULT_CONTAINER_SOCKETS.find((s) => existsSync(s)) ?? DEFAULT_CONTAINER_SOCKETS[0]!;
}

/**
 * Task processes in containers of the host's container engine (Podman ≥ 4 or Docker, through the
 * Docker-compatible socket with dockerode), made from the deployment's image, with the task's machine
 * as the container's cpu and memory limits and the host network. The task talks to the runner through a relay that is
 * the container's PID 1 (container-shim.mjs; the engine cannot pass an fd into a container): stdout,
 * stderr and fd 3 travel as frames over one unix socket in a link dir bound into the container.
 * Checkpoints are Podman's exported ones (CRIU images plus the container's writable layer, one tar),
 * or Docker's (`dockerd --experimental`: CRIU's images only, so a task that changed its container's
 * own files is not dumped), and restore as a new container on any host with the same kind of engine
 * that can get the image.
 */
export async function createContainerRuntime(options: ContainerRuntimeOptions = {}): Promise<WorkloadRuntime> {
  const socketPath = containerSocket(options.socketPath);
  const workDir = path.resolve(options.workDir ?? path.join(tmpdir(), "stasis-container"));
  const { openEngine } = await import("./container-engine.ts");
  const engine = await openEngine(socketPath).catch((err: Error) => {
    throw new WorkloadError("START_FAILED", `the container workload needs a container engine: ${err.message} (start Podman's with \`podman system service --time=0 unix://${socketPath}\`, or dockerd)`, { cause: err });
  });
  let checkpoints: CheckpointSupport;
  if (options.checkpoints === false) checkpoints = { available: false, reason: "checkpoints turned off" };
  else if (engine.kind === "docker" && !(await engine.experimental())) {
    checkpoints = { available: false, reason: `the engine on ${socketPath} is Docker ${engine.version} without --experimental, which has no checkpoint API: tasks run, their waits stay in the process` };
  } else {
    const criu = await detectCriu("criu");
    checkpoints = criu.ok ? { available: true } : { available: false, reason: criu.reason };
  }
  if (options.checkpoints === true && !checkpoints.available) {
    throw new WorkloadError("CHECKPOINTS_UNAVAILABLE", `checkpoints were required but are unavailable: ${checkpoints.reason}`);
  }
  await mkdir(workDir, { recursive: true });
  await removeOrphans(engine.docker, workDir);
  const imageFor = createImageLoader(engine, workDir);
  const tasks = new WeakMap<TaskProcess, ContainerTask & { image: ContainerImage; container?: ContainerCheckpointMeta["container"] }>();
  const newName = () => `stasis-${process.pid}-${randomUUID().slice(0, 8)}`;
  const labels = { [LABEL]: "container" };
  const requireCheckpoints = (what: string) => {
    if (!checkpoints.available) throw new WorkloadError("CHECKPOINTS_UNAVAILABLE", `cannot ${what}: checkpoints are unavailable (${checkpoints.reason})`);
  };

  /** Waits for the shim to connect (or the container to end first, or a deadline). */
  async function connected(task: ContainerTask, what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        task.link.connected(),
        task.proc.exited.then((exit) => Promise.reject(new Error(`the container ended (${exit.signal ?? `exit ${exit.code}`}) before its task connected: ${task.lastWords() || "it said nothing"}`))),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no connection from the task within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS))),
      ]);
    } catch (err) {
      await task.proc.kill();
      throw new WorkloadError(what === "start" ? "START_FAILED" : "RESTORE_FAILED", `${what} of container ${task.name} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    checkpoints,

    async start(opts) {
      const rootfs = opts.rootfs ?? options.rootfs;
      const image = opts.image ?? options.image;
      if (!rootfs || !image) throw new WorkloadError("START_FAILED", "the container workload needs the deployment's image and its unpacked rootfs (start options `image`, `rootfs`)");
      const spec = await containerProcess(path.resolve(rootfs), opts);
      const imageId = await imageFor(image);
      const name = newName();
      const link = await openLink(path.join(workDir, name));
      const made = { cmd: [spec.args[0]!, `${LINK_MOUNT}/shim.mjs`, `${LINK_MOUNT}/ipc.sock`, ...spec.args], workingDir: spec.cwd, binds: [...spec.binds.map((d) => `${d}:${d}:rw`), ...spec.files.map((f) => `${f}:${f}:ro`)] };
      let container;
      try {
        container = await engine.create({ ...made, name, image: imageId, binds: [`${link.dir}:${LINK_MOUNT}`, ...made.binds], labels, memoryMb: opts.machine?.memory, cpu: opts.machine?.cpu });
        await container.start();
      } catch (err) {
        if (container) await container.remove({ force: true }).catch(() => {});
        await link.close();
        throw new WorkloadError("START_FAILED", `cannot start a container of ${image.ref}: ${(err as Error).message}`, { cause: err });
      }
      const task = { ...trackContainer(container, name, link, opts.machine), image, container: made };
      await connected(task, "start");
      // The environment goes over the link, never into the engine's container config.
      link.hello(Object.fromEntries(spec.env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)])));
      tasks.set(task.proc, task);
      return task.proc;
    },

    async checkpoint(proc, imageDir, dumpOptions) {
      requireCheckpoints("checkpoint");
      const task = tasks.get(proc);
      if (!task) throw new WorkloadError("UNKNOWN_PROCESS", `task ${proc.id} was not started or restored by this runtime`);
      if (!task.running) throw new WorkloadError("NOT_RUNNING", `task ${proc.id} is not running`);
      const leaveRunning = Boolean(dumpOptions?.leaveRunning);
      const imageAbs = path.resolve(imageDir);
      await mkdir(imageAbs, { recursive: true });
      const started = performance.now();
      // Podman's export is one tar; Docker's checkpoint is a dir of CRIU's images.
      const written = path.join(imageAbs, engine.kind === "podman" ? CONTAINER_ARCHIVE : DOCKER_CHECKPOINT);
      if (engine.kind === "docker") {
        // Docker's checkpoint leaves the container's own files out: a task that wrote some keeps running here instead.
        const changed = await engine.writableChanges(task.name, [`${task.link.dir}:${LINK_MOUNT}`, ...(task.container?.binds ?? [])]);
        if (changed.length > 0) throw new WorkloadError("DUMP_FAILED", `checkpoint of task ${task.name} refused: Docker's checkpoint leaves out the files the task changed in its container (${changed.slice(0, 5).join(", ")}); a task on Docker keeps its files in its app dir or shared dirs`);
      }
      try {
        await task.link.detach();
        if (!leaveRunning) task.expectKill();
        await engine.checkpoint(task.name, written, leaveRunning);
      } catch (err) {
        task.expectKill(false);
        await rm(written, { recursive: true, force: true });
        if (task.running) {
          // The relay connects again within milliseconds; a task that does not is told apart by its silence, not waited for.
          await task.link.listen();
          await Promise.race([task.link.connected(), task.proc.exited, new Promise((resolve) => setTimeout(resolve, CONNECT_TIMEOUT_MS).unref())]);
        }
        throw new WorkloadError("DUMP_FAILED", `checkpoint of task ${task.name} failed: criu dump failed: ${(err as Error).message}`, { cause: err });
      }
      const dumpMs = Math.round(performance.now() - started);
      const container = engine.kind === "docker" ? { container: task.container } : {};
      await writeContainerMeta(imageAbs, { format: 1, runtime: "container", engine: engine.kind, linkDir: task.link.dir, image: task.image, machine: task.machine, ...container, dumpedAt: new Date().toISOString() });
      if (leaveRunning) {
        await task.link.listen();
        await task.link.connected();
      } else {
        await proc.exited;
      }
      return { dumpMs, sizeBytes: engine.kind === "podman" ? (await stat(written)).size : dirSize(written) };
    },

    async restore(imageDir, opts) {
      requireCheckpoints("restore");
      const imageAbs = path.resolve(imageDir);
      const meta = await readContainerMeta(imageAbs);
      if (meta.engine !== engine.kind || (engine.kind === "docker" && !meta.container)) {
        throw new WorkloadError("BAD_CHECKPOINT", `${imageAbs} is a checkpoint of ${meta.engine === "docker" ? "Docker" : "Podman"}'s: this runner's engine is ${engine.kind === "docker" ? "Docker" : "Podman"}`);
      }
      const machine = opts.machine ?? meta.machine;
      // This runner's place for the same image (its allowed registry), else where the dumping runner had it.
      const image = opts.image?.digest === meta.image.digest ? opts.image : meta.image;
      const imageId = await imageFor(image);
      const name = newName();
      const link = await openLink(path.join(workDir, name));
      try {
        if (engine.kind === "podman") {
          const archive = await retargetArchive(path.join(imageAbs, CONTAINER_ARCHIVE), path.join(workDir, `${name}.restore`), meta.linkDir, link.dir);
          await engine.restore(archive, name);
        } else {
          // A container made as the dumped one was, with this restore's own link dir where the dumped one's was bound.
          const made = meta.container!;
          await engine.restore(path.join(imageAbs, DOCKER_CHECKPOINT), { ...made, name, image: imageId, binds: [`${link.dir}:${LINK_MOUNT}`, ...made.binds], labels, memoryMb: machine?.memory, cpu: machine?.cpu });
        }
      } catch (err) {
        await engine.docker.getContainer(name).remove({ force: true }).catch(() => {});
        await link.close();
        await rm(path.join(workDir, `${name}.restore`), { recursive: true, force: true });
        if (err instanceof WorkloadError) throw err;
        throw new WorkloadError("RESTORE_FAILED", `restore of ${imageAbs} failed: ${(err as Error).message}`, { cause: err });
      }
      const task = { ...trackContainer(engine.docker.getContainer(name), name, link, machine), image, container: meta.container };
      await connected(task, "restore");
      tasks.set(task.proc, task);
      return task.proc;
    },
  };
}

/**
 * Containers and link dirs left by a runner that died (its PID in their name). Their tasks end by
 * themselves when the runner's socket closes (the relay exits); this removes what is left of them.
 */
async function removeOrphans(docker: ContainerEngine["docker"], workDir: string): Promise<void> {
  const orphaned = (name: string) => {
    const owner = Number(/^\/?stasis-(\d+)-/.exec(name)?.[1]);
    return Number.isInteger(owner) && owner > 0 && !pidAlive(owner);
  };
  const listed = await docker.listContainers({ all: true, filters: { label: [`${LABEL}=container`] } }).catch(() => []);
  // By name, which is the restoring runner's own (labels come along from the dumped container).
  for (const c of listed) if (orphaned(c.Names?.[0] ?? "")) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
  for (const name of (await readdir(workDir)).filter(orphaned)) await rm(path.join(workDir, name), { recursive: true, force: true });
}
