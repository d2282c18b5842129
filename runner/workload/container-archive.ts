import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { c as createTar, x as extractTar } from "tar";
import { WorkloadError } from "./errors.ts";

/** The files of Podman's exported checkpoint that name the container's bind mounts by host path. */
const CONFIG_FILES = ["config.dump", "spec.dump"];
/**
 * Paths in config.dump that Podman 4.3 keeps from the dumping engine's run root and container id
 * (`<runroot>/overlay-containers/<old id>/userdata/…`): on another host (or another run root) conmon
 * and runc fail to write them. Without them Podman derives them for the new container.
 */
const ENGINE_PATHS = ["conmonPidFile", "pid_file"];

/**
 * Podman's exported checkpoint (`checkpoint?export=true`) with the host dir `from` bound into the
 * container replaced by `to`, as a tar stream for `restore?import=true`. The restored container then
 * binds this restore's own link dir where the dumped one's was (CRIU's images name the mount by its
 * place in the container, not by its source), so two restores of one checkpoint on one host never
 * share a socket. Paths of the dumping engine's own are dropped (ENGINE_PATHS). The tar is unpacked into `stage` (removed once the stream has ended).
 */
export async function retargetArchive(archive: string, stage: string, from: string, to: string): Promise<Readable> {
  await mkdir(stage, { recursive: true });
  // Podman writes the archive; its entries are plain files and dirs under one root (tar checks each path stays in `stage`).
  await extractTar({ file: archive, cwd: stage, strict: true, preserveOwner: true });
  for (const name of CONFIG_FILES) {
    const file = path.join(stage, name);
    const text = await readFile(file, "utf8").catch(() => {
      throw new WorkloadError("BAD_CHECKPOINT", `${archive} is not a Podman checkpoint export: ${name} is missing`);
    });
    const config = JSON.parse(text) as Record<string, unknown>;
    if (name === "config.dump") for (const key of ENGINE_PATHS) delete config[key];
    await writeFile(file, JSON.stringify(replaceStrings(config, from, to)));
  }
  const entries = await readdir(stage);
  const pack = createTar({ cwd: stage, portable: false }, entries);
  const stream = Readable.from(pack);
  stream.once("close", () => void rm(stage, { recursive: true, force: true }));
  return stream;
}

/** `value` with every string equal to `from`, or a path below it, pointing into `to` instead. */
function replaceStrings(value: unknown, from: string, to: string): unknown {
  if (typeof value === "string") return value === from || value.startsWith(`${from}/`) || value.startsWith(`${from}:`) ? to + value.slice(from.length) : value;
  if (Array.isArray(value)) return value.map((v) => replaceStrings(v, from, to));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceStrings(v, from, to)]));
  return value;
}
