import { join } from "node:path";
import type { Logger } from "pino";
import { deployProject, type ImageStore } from "../builder/index.ts";
import type { BuildSlots } from "./build-slots.ts";
import { cloneCommit } from "./clone-commit.ts";
import { resolveProjectDir } from "./project-dir.ts";
import type { GithubAppConfig } from "./config.ts";
import { createGithubReporter, type GithubReporter } from "./github-reporter.ts";
import type { InstallationTokens } from "./installation-tokens.ts";
import { previewComment, type BuildOutcome } from "./report-text.ts";
import type { StasisAdmin } from "./stasis-admin.ts";

export interface DeployTarget {
  installationId: number;
  /** `owner/name` */
  repository: string;
  project: string;
  sha: string;
  branch: string;
  environment: string;
  production: boolean;
  pullNumber?: number;
  commitMessage?: string;
  committedAt?: string;
  /** Order of receipt: a later webhook for the same environment supersedes an earlier one. */
  order: number;
}

export interface DeployCommitDeps {
  config: GithubAppConfig;
  tokens: InstallationTokens;
  admin: StasisAdmin;
  slots: BuildSlots;
  storeFor(project: string): ImageStore;
  log: Logger;
}

/** Refused before building (e.g. the environment is archived): reported as a failure with this message. */
export class DeployRefusedError extends Error {
  override name = "DeployRefusedError";
}

/**
 * One commit → one environment: check run and GitHub Deployment in progress, then (in a build
 * slot) clone, build, push, register and promote through `deployProject`, then report the outcome
 * on the check run, the deployment status and, for a pull request, its comment.
 */
export async function deployCommit(deps: DeployCommitDeps, target: DeployTarget): Promise<BuildOutcome> {
  const { config, log } = deps;
  const [owner, repo] = target.repository.split("/");
  const buildLog: string[] = [];
  const progress = (message: string) => {
    buildLog.push(message);
    if (buildLog.length > 500) buildLog.splice(0, buildLog.length - 500);
  };
  const key = `${target.repository.toLowerCase()}#${target.environment}`;
  // Claim the slot before any await, so supersession follows the order webhooks arrived in.
  const building = deps.slots.run(key, target.order, `commit ${target.sha.slice(0, 7)}`, (signal) => build(deps, target, progress, signal));
  const reporting = (async () => {
    const reporter = createGithubReporter(await deps.tokens.octokit(target.installationId), { owner, repo });
    const checkRunId = await reporter.startCheck(target.sha, target.environment);
    const deploymentId = await reporter.createDeployment(target.sha, target.environment, { production: target.production, transient: !target.production });
    await reporter.deploymentStatus(deploymentId, "in_progress", `Building ${target.sha.slice(0, 7)}`, target.environment);
    if (target.pullNumber !== undefined) await reporter.upsertPullComment(target.pullNumber, previewComment({ ...commentBase(deps, target) }));
    return { reporter, checkRunId, deploymentId };
  })();

  let outcome: BuildOutcome;
  try {
    outcome = { kind: "deployed", deployment: await building, log: buildLog };
  } catch (thrown) {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    outcome = error.name === "SupersededError" ? { kind: "canceled", reason: error.message, log: buildLog } : { kind: "failed", reason: error.message, log: buildLog };
    progress(`${outcome.kind}: ${error.message}`);
  }
  log.info({ repository: target.repository, sha: target.sha, environment: target.environment, outcome: outcome.kind, version: outcome.kind === "deployed" ? outcome.deployment.version : undefined }, "build finished");

  try {
    const { reporter, checkRunId, deploymentId } = await reporting;
    await reporter.finishCheck(checkRunId, target.environment, outcome);
    await reportDeployment(reporter, deploymentId, target.environment, outcome);
    // A superseded build leaves the comment to the newer one.
    if (target.pullNumber !== undefined && outcome.kind !== "canceled") await reporter.upsertPullComment(target.pullNumber, previewComment({ ...commentBase(deps, target), outcome }));
  } catch (thrown) {
    log.error({ err: thrown instanceof Error ? thrown.message : String(thrown), repository: target.repository, sha: target.sha }, "reporting to GitHub failed");
  }
  return outcome;
}

async function build(deps: DeployCommitDeps, target: DeployTarget, progress: (message: string) => void, signal: AbortSignal) {
  const { config, admin, tokens } = deps;
  const credential = await admin.deployToken(target.project, target.environment, target.repository);
  if (credential.archived) throw new DeployRefusedError(`environment ${target.project}/${target.environment} is archived (its pull request was closed): it takes no new deployments`);
  signal.throwIfAborted();
  progress(`cloning ${target.repository} at ${target.sha}`);
  const clone = await cloneCommit({ url: `${config.gitUrl}/${target.repository}.git`, token: await tokens.token(target.installationId), sha: target.sha, workRoot: join(config.stateDir, "work"), signal });
  try {
    const project = await resolveProjectDir(clone.dir, config.projectPath ?? ".");
    if (project.path !== ".") progress(`project in ${project.path}/`);
    const deployment = await deployProject({
      projectDir: project.dir,
      apiUrl: config.stasisApiUrl,
      apiKey: credential.token,
      store: deps.storeFor(target.project),
      promote: true,
      withRuntime: config.withRuntime,
      commit: { sha: target.sha, branch: target.branch, repository: target.repository, message: target.commitMessage, committedAt: target.committedAt },
      onProgress: progress,
      signal,
      // The build runs the pushed code: it must not see the App's links, deliveries, clones of
      // other repositories, images, nor its key.
      hidePaths: [config.stateDir, ...(config.privateKeyFile ? [config.privateKeyFile] : [])],
    });
    return deployment!;
  } finally {
    await clone.remove();
  }
}

async function reportDeployment(reporter: GithubReporter, deploymentId: number, environment: string, outcome: BuildOutcome): Promise<void> {
  if (outcome.kind === "deployed") return reporter.deploymentStatus(deploymentId, "success", `Version ${outcome.deployment.version} deployed and promoted`, environment);
  if (outcome.kind === "canceled") return reporter.deploymentStatus(deploymentId, "inactive", `Canceled: ${outcome.reason}`, environment);
  return reporter.deploymentStatus(deploymentId, "failure", `Build failed: ${outcome.reason}`, environment);
}

const commentBase = (deps: DeployCommitDeps, target: DeployTarget) => ({ environment: target.environment, project: target.project, stasisApiUrl: deps.config.stasisApiUrl, sha: target.sha });
