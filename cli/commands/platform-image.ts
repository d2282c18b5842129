import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { buildPlatformImage, buildRuntimeImage, openImageRepository } from "../../builder/index.ts";
import { CliError, ExitCode, printResult, progress } from "../output.ts";

const REPO_ROOT = resolve(import.meta.dirname, "../..");

interface BuildImageOptions {
  push?: string;
  out?: string;
  tag?: string;
  node?: string;
  json?: boolean;
}

/** `stasis admin build-image`: Stasis's own server/runner image, built from this checkout and pushed in one command. */
export function registerPlatformImageCommand(program: Command): void {
  const admin = program.commands.find((c) => c.name() === "admin") ?? program.command("admin").description("operator commands for running Stasis itself");
  admin
    .command("build-image")
    .description("build Stasis's own image (server and runner: Node, CRIU 4.2, this checkout) and push it to a registry or write it to an OCI layout dir")
    .option("--push <host/repo>", "registry repository to push to (credentials: STASIS_REGISTRY_USERNAME/_PASSWORD or _TOKEN)")
    .option("--out <dir>", "OCI image-layout dir to write instead (skopeo/umoci read it)")
    .option("--tag <tag>", "tag to push (default <version>-<commit>); a tag is never moved to another digest")
    .option("--node <path>", "the Node binary the image runs (default: the one running this command)")
    .option("--json", "print {digest, ref, tag, node, criu, layers, seconds}")
    .action(async (opts: BuildImageOptions) => {
      const target = opts.push ?? (opts.out ? resolve(opts.out) : undefined);
      if (!target) throw new CliError("say where the image goes: --push <host/repo> or --out <dir>", ExitCode.USAGE);
      const started = Date.now();
      const scratch = await mkdtemp(join(tmpdir(), "stasis-image-"));
      try {
        const image = await buildPlatformImage({ repoRoot: REPO_ROOT, blobsDir: join(scratch, "blobs"), nodeBinary: opts.node, onProgress: progress });
        const revision = image.config.config?.Labels?.["org.opencontainers.image.revision"];
        const tag = opts.tag ?? `${image.config.config?.Labels?.["org.opencontainers.image.version"]}-${revision ? revision.slice(0, 12) : "dirty"}`;
        const pushed = await openImageRepository(target).push(image, tag, progress);
        const result = {
          digest: image.digest,
          ref: pushed.ref,
          tag,
          node: image.nodeVersion,
          criu: image.criuVersion,
          layers: image.layers.map((l) => ({ digest: l.digest, size: l.size })),
          seconds: Math.round((Date.now() - started) / 100) / 10,
        };
        printResult(Boolean(opts.json), result, () => `${pushed.ref} (tag ${tag}; Node ${image.nodeVersion}, CRIU ${image.criuVersion}; ${result.seconds} s)`);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    });

  admin
    .command("push-runtime")
    .description("push the runtime image task images build on (a Node binary and its libraries); set STASIS_RUNTIME_IMAGE (the Action's runtime-image input) to the printed reference")
    .requiredOption("--push <host/repo>", "registry repository, e.g. the one deploys push to (its layers are then mounted, never uploaded again)")
    .option("--node <path>", "the Node binary the tasks run (default: the one running this command)")
    .option("--json", "print {ref, digest, tag, node, bytesUploaded}")
    .action(async (opts: { push: string; node?: string; json?: boolean }) => {
      const scratch = await mkdtemp(join(tmpdir(), "stasis-runtime-"));
      try {
        const image = await buildRuntimeImage({ nodeBinary: opts.node, blobsDir: join(scratch, "blobs") });
        const tag = `node-${image.nodeVersion}-${image.digest.slice(7, 19)}`;
        const pushed = await openImageRepository(opts.push).push(image, tag, progress);
        const result = { ref: pushed.ref, digest: image.digest, tag, node: image.nodeVersion, bytesUploaded: pushed.bytesUploaded };
        printResult(Boolean(opts.json), result, () => `${pushed.ref} (Node ${image.nodeVersion}); use it with STASIS_RUNTIME_IMAGE=${pushed.ref}`);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    });
}
