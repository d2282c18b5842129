import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { writeLayer } from "./layer.ts";
import { assembleImage, type BuiltImage } from "./oci-image.ts";
import { runtimeEntries } from "./runtime-layer.ts";

const run = promisify(execFile);

export interface RuntimeImage extends BuiltImage {
  nodeVersion: string;
}

/**
 * The runtime image task images build on (`STASIS_RUNTIME_IMAGE`): one layer with a Node binary,
 * its shared libraries, CA certificates and a minimal /etc — the same layer `buildImage` makes from
 * the local Node, but from the Node binary asked for. Timestamps are 0, so one binary (and its
 * libraries) gives one digest; push it once and every builder — CLI, Action, App, whatever its own
 * Node — puts the same bytes under a project's app layer.
 */
export async function buildRuntimeImage(o: { nodeBinary?: string; blobsDir: string }): Promise<RuntimeImage> {
  const node = o.nodeBinary ?? process.execPath;
  const nodeVersion = (await run(node, ["--version"])).stdout.trim();
  const { entries } = await runtimeEntries(node);
  const layer = await writeLayer(entries, { blobsDir: o.blobsDir, mtime: 0 });
  const image = await assembleImage({
    blobsDir: o.blobsDir,
    layers: [layer],
    entrypoint: ["node"],
    env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    workingDir: "/app",
    created: "1970-01-01T00:00:00Z",
    labels: { "org.opencontainers.image.title": "stasis-runtime", "stasis.node-version": nodeVersion },
  });
  return Object.assign(image, { nodeVersion });
}
