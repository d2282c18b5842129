// The build child: runs inside the build sandbox (scrubbed environment; as root's caller, an
// unprivileged user in its own mount namespace). It loads the project's config, bundles, indexes
// and writes the project's layers, and reports on fd 3. Nothing here holds a platform secret.
import { createWriteStream } from "node:fs";
import { buildAppLayers } from "../build-app-layers.ts";
import { loadProjectConfig } from "../load-config.ts";
import { SandboxRequest, type SandboxMessage } from "./protocol.ts";

const out = createWriteStream("", { fd: 3 });
const send = (message: SandboxMessage) => new Promise<void>((resolve) => out.write(JSON.stringify(message) + "\n", () => resolve()));

async function main(): Promise<void> {
  const request = SandboxRequest.parse(JSON.parse(process.argv[2] ?? "null"));
  if (request.mode === "config") {
    const loaded = await loadProjectConfig(request.projectDir);
    await send({ type: "config", config: loaded.config, configPath: loaded.configPath });
    return;
  }
  const built = await buildAppLayers({ ...request, onProgress: (message) => void send({ type: "progress", message }) });
  await send({ type: "built", manifest: built.manifest, config: built.config, layers: built.layers.map(({ digest, diffId, size, mediaType }) => ({ digest, diffId, size, mediaType: mediaType as never })) });
}

main().then(
  () => out.end(() => process.exit(0)),
  async (error: Error & { code?: string }) => {
    await send({ type: "error", code: typeof error.code === "string" ? error.code : "BUILD_FAILED", message: error.message });
    out.end(() => process.exit(1));
  },
);
