// Builds a project's image in this process (whatever Node runs it) and prints {digest, node, layers}:
// `node --import tsx test/support/build-image-child.ts <projectDir> <buildDir> [runtime image ref]`.
import { buildImage } from "../../builder/index.ts";

const [projectDir, buildDir, ref] = process.argv.slice(2);
const image = await buildImage({ projectDir: projectDir!, buildDir: buildDir!, ...(ref ? { base: { kind: "registry" as const, ref } } : { base: { kind: "local-node" as const } }) });
process.stdout.write(JSON.stringify({ digest: image.digest, node: image.nodeVersion, builtBy: process.version, layers: image.layers.map((l) => l.digest) }) + "\n");
