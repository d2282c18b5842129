import { resolve } from "node:path";
import type { Command } from "commander";
import { buildToLayout, openImageRepository, type ImageStore } from "../../builder/index.ts";
import type { DeploymentView } from "../../schemas/index.ts";
import { callStasisApi as apiCall } from "../../builder/index.ts";
import { resolveAdminTarget, resolveApiTarget } from "../api-target.ts";
import { deployProject } from "../../builder/index.ts";
import { printResult, progress, table } from "../output.ts";

function formatDeployment(d: DeploymentView): string {
  return `${d.version} ${d.status}${d.promoted ? " (promoted)" : ""} in ${d.environment}\n  image ${d.imageRef ?? "-"}\n  tasks ${d.tasks.join(", ") || "-"}`;
}

/** `--registry host/repo` (or STASIS_REGISTRY) pushes there; otherwise an OCI layout dir. */
function imageStoreFor(opts: { registry?: string; out: string }): ImageStore {
  return openImageRepository(opts.registry ?? process.env.STASIS_REGISTRY ?? resolve(opts.out));
}

export function registerDeployCommands(program: Command): void {
  program
    .command("build")
    .description("build the project's image into an OCI layout dir, without deploying")
    .option("--project <dir>", "the project directory", ".")
    .option("--out <dir>", "OCI image layout directory", ".stasis/build")
    .option("--json", "print { digest, layout, tag }")
    .action(async (opts: { project: string; out: string; json?: boolean }) => {
      const result = await buildToLayout({ projectDir: resolve(opts.project), outDir: resolve(opts.out), onProgress: opts.json ? undefined : progress });
      printResult(Boolean(opts.json), result, () => `built ${result.digest}\n  layout ${result.layout}\n  tag    ${result.tag}`);
    });

  program
    .command("deploy")
    .description("build, push and register a new version (promoted unless --skip-promotion)")
    .option("--project <dir>", "the project directory", ".")
    .option("--registry <ref>", "push to this registry repository (host[:port]/repo); default STASIS_REGISTRY, else --out")
    .option("--out <dir>", "OCI image layout directory when no registry is given", ".stasis/images")
    .option("--skip-promotion", "register the version without promoting it")
    .option("--json", "print the deployment")
    .action(async (opts: { project: string; registry?: string; out: string; skipPromotion?: boolean; json?: boolean }) => {
      const { apiUrl, apiKey } = resolveApiTarget();
      const deployment = (await deployProject({ projectDir: resolve(opts.project), apiUrl, apiKey, store: imageStoreFor(opts), promote: !opts.skipPromotion, onProgress: opts.json ? undefined : progress }))!;
      printResult(Boolean(opts.json), deployment, () => formatDeployment(deployment));
    });

  program
    .command("promote <version>")
    .description("make a deployed version the one new runs use")
    .option("--json", "print the deployment")
    .action(async (version: string, opts: { json?: boolean }) => {
      const { apiUrl, apiKey } = resolveApiTarget();
      const deployment = await apiCall<DeploymentView>(apiUrl, apiKey, "POST", `/api/v1/deployments/${encodeURIComponent(version)}/promote`, {});
      printResult(Boolean(opts.json), deployment, () => `promoted ${deployment.version} in ${deployment.environment}`);
    });

  program
    .command("rollback")
    .description("promote the previously promoted version again (no rebuild)")
    .option("--json", "print the deployment")
    .action(async (opts: { json?: boolean }) => {
      const { apiUrl, apiKey } = resolveApiTarget();
      const deployment = await apiCall<DeploymentView>(apiUrl, apiKey, "POST", "/api/v1/deployments/rollback", {});
      printResult(Boolean(opts.json), deployment, () => `rolled back to ${deployment.version} in ${deployment.environment}`);
    });

  const deployments = program.command("deployments").description("list deployments of the environment; copy a version to another environment");
  deployments
    .command("copy <version>")
    .description("deploy a version of one environment (e.g. preview/pr-7) to another as is: same image digest and manifest, no rebuild (admin token)")
    .requiredOption("--from <environment>", "the environment the version is in")
    .requiredOption("--to <environment>", "the environment that gets it as a new version")
    .option("--project <slug>", "the project (default: the project of this directory's stasis dev)")
    .option("--promote", "promote the new version in the target environment")
    .option("--json", "print the new deployment")
    .action(async (version: string, opts: { from: string; to: string; project?: string; promote?: boolean; json?: boolean }) => {
      const { apiUrl, adminToken } = resolveAdminTarget();
      const project = opts.project ?? (await apiCall<{ project: string }>(apiUrl, resolveApiTarget().apiKey, "GET", "/api/v1/whoami")).project;
      const copied = await apiCall<DeploymentView>(apiUrl, adminToken, "POST", `/api/v1/admin/projects/${encodeURIComponent(project)}/deployments/copy`, { version, from: opts.from, to: opts.to, promote: Boolean(opts.promote) });
      printResult(Boolean(opts.json), copied, () => `copied ${opts.from} ${version} to ${opts.to} as ${copied.version} (${(copied.imageDigest ?? "").slice(0, 19)}…)${opts.promote ? ", promoted" : ""}`);
    });
  deployments
    .command("list")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const { apiUrl, apiKey } = resolveApiTarget();
      const page = await apiCall<{ data: DeploymentView[] }>(apiUrl, apiKey, "GET", "/api/v1/deployments");
      printResult(Boolean(opts.json), page, () =>
        table([["VERSION", "STATUS", "PROMOTED", "DIGEST", "CREATED"], ...page.data.map((d) => [d.version, d.status, d.promoted ? "yes" : "", (d.imageDigest ?? "-").slice(0, 19), d.createdAt])]),
      );
    });
}
