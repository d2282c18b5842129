import type { EmitterWebhookEvent } from "@octokit/webhooks";
import type { Logger } from "pino";
import { StasisApiCallError } from "../builder/index.ts";
import { deployCommit, type DeployCommitDeps } from "./deploy-commit.ts";
import { createGithubReporter } from "./github-reporter.ts";
import { previewEnvironment, projectSlugFor } from "./project-slug.ts";
import { previewComment, type BuildOutcome } from "./report-text.ts";
import type { RepoLink, RepoLinks } from "./repo-links.ts";

type Payload<N extends "push" | "pull_request" | "installation" | "installation_repositories"> = EmitterWebhookEvent<N>["payload"];

export interface EventContext {
  deliveryId: string;
  /** Order of receipt, for supersession. */
  order: number;
  log: Logger;
}

export interface HandleEventDeps extends DeployCommitDeps {
  links: RepoLinks;
}

export type EventHandler = (name: string, payload: unknown, context: EventContext) => Promise<void>;

/** Routes one verified, first-seen webhook to what it means for Stasis. Unknown events are ignored. */
export function createEventHandler(deps: HandleEventDeps): EventHandler {
  const link = async (repository: { full_name: string; name: string }, installationId: number): Promise<RepoLink> => {
    const project = projectSlugFor(repository.name);
    await deps.admin.ensureProject(project, repository.full_name);
    const value = { ...deps.links.get(repository.full_name), repository: repository.full_name, installationId, project };
    await deps.links.set(value);
    return value;
  };
  // A repository the App has not seen an installation event for (installed before this service ran) is linked on first use.
  const linkFor = async (payload: { repository?: { full_name: string; name: string; default_branch?: string } | null; installation?: { id: number } | null }) => {
    if (!payload.repository) return null;
    const found = deps.links.get(payload.repository.full_name) ?? (payload.installation ? await link(payload.repository, payload.installation.id) : null);
    return found ? syncDefaultBranch(found, payload.repository.default_branch) : null;
  };
  // Installation payloads do not carry a repository's default branch; push and pull_request ones do.
  // The project's deploy policy follows it, so the Action's OIDC exchange takes a push to e.g. `master`.
  const syncDefaultBranch = async (found: RepoLink, branch: string | undefined): Promise<RepoLink> => {
    if (!branch || found.defaultBranch === branch) return found;
    await deps.admin.setDefaultBranch(found.project, branch);
    const value = { ...found, defaultBranch: branch };
    await deps.links.set(value);
    return value;
  };

  return async (name, payload, context) => {
    const { log } = context;
    if (name === "installation") {
      const p = payload as Payload<"installation">;
      if (p.action === "created" || p.action === "new_permissions_accepted" || p.action === "unsuspend") {
        for (const repository of p.repositories ?? []) await link(repository, p.installation.id);
      } else if (p.action === "deleted" || p.action === "suspend") {
        for (const l of deps.links.list().filter((l) => l.installationId === p.installation.id)) await deps.links.remove(l.repository);
      }
      log.info({ action: p.action, installation: p.installation.id, linked: deps.links.list().length }, "installation");
      return;
    }
    if (name === "installation_repositories") {
      const p = payload as Payload<"installation_repositories">;
      for (const repository of p.repositories_added) await link(repository, p.installation.id);
      for (const repository of p.repositories_removed) if (repository.full_name) await deps.links.remove(repository.full_name);
      log.info({ added: p.repositories_added.length, removed: p.repositories_removed.length }, "installation repositories");
      return;
    }
    if (name === "push") return onPush(deps, payload as Payload<"push">, context, await linkFor(payload as Payload<"push">));
    if (name === "pull_request") return onPullRequest(deps, payload as Payload<"pull_request">, context, await linkFor(payload as Payload<"pull_request">));
    log.debug({ event: name }, "event ignored");
  };
}

async function onPush(deps: HandleEventDeps, p: Payload<"push">, context: EventContext, link: RepoLink | null): Promise<void> {
  if (!link) return context.log.warn({ repository: p.repository.full_name }, "push from a repository that is not linked: ignored");
  if (p.deleted || !p.ref.startsWith("refs/heads/")) return;
  const branch = p.ref.slice("refs/heads/".length);
  const environment = branch === p.repository.default_branch ? "production" : deps.config.branchEnvironments[branch];
  if (!environment) return context.log.debug({ branch }, "push to a branch that is not deployed");
  failIfFailed(await deployCommit(deps, {
    installationId: p.installation?.id ?? link.installationId,
    repository: p.repository.full_name,
    project: link.project,
    sha: p.after,
    branch,
    environment,
    production: environment === "production",
    commitMessage: p.head_commit?.message,
    committedAt: p.head_commit?.timestamp,
    order: context.order,
  }));
}

async function onPullRequest(deps: HandleEventDeps, p: Payload<"pull_request">, context: EventContext, link: RepoLink | null): Promise<void> {
  if (!link) return context.log.warn({ repository: p.repository.full_name }, "pull request in a repository that is not linked: ignored");
  const pr = p.pull_request;
  const environment = previewEnvironment(pr.number);
  const installationId = (p as { installation?: { id: number } }).installation?.id ?? link.installationId;
  const [owner, repo] = p.repository.full_name.split("/");
  if (p.action === "closed") {
    deps.slots.cancel(`${p.repository.full_name.toLowerCase()}#${environment}`, "the pull request was closed");
    const archived = await deps.admin.archive(link.project, environment).then(
      () => true,
      (error: unknown) => (error instanceof StasisApiCallError && error.status === 404 ? false : Promise.reject(error)),
    );
    const reporter = createGithubReporter(await deps.tokens.octokit(installationId), { owner, repo });
    const deactivated = await reporter.deactivateEnvironment(environment, `Pull request #${pr.number} closed: ${environment} is archived`);
    if (archived) {
      await reporter.upsertPullComment(pr.number, previewComment({ environment, project: link.project, stasisApiUrl: deps.config.stasisApiUrl, sha: pr.head.sha, archived: true }));
    }
    context.log.info({ environment, archived, deactivated }, "pull request closed");
    return;
  }
  if (p.action !== "opened" && p.action !== "reopened" && p.action !== "synchronize") return;
  const fromFork = !pr.head.repo || pr.head.repo.full_name.toLowerCase() !== pr.base.repo.full_name.toLowerCase();
  if (fromFork && !deps.config.allowForkBuilds) {
    const reporter = createGithubReporter(await deps.tokens.octokit(installationId), { owner, repo });
    await reporter.skippedCheck(pr.head.sha, environment, "neutral", "Not built: pull request from a fork", `Pull requests from forks (${pr.head.repo?.full_name ?? "a deleted fork"}) are not built: their code would run with this repository's deploy credentials. A maintainer can push the branch to this repository, or the App's operator can set STASIS_ALLOW_FORK_BUILDS=1.`);
    context.log.info({ environment, head: pr.head.repo?.full_name }, "fork pull request not built");
    return;
  }
  failIfFailed(await deployCommit(deps, {
    installationId,
    repository: p.repository.full_name,
    project: link.project,
    sha: pr.head.sha,
    branch: pr.head.ref,
    environment,
    production: false,
    pullNumber: pr.number,
    commitMessage: pr.title,
    order: context.order,
  }));
}

/** A failed deploy (already reported on GitHub) fails the delivery's handling, so a redelivery builds again; a superseded one does not. */
function failIfFailed(outcome: BuildOutcome): void {
  if (outcome.kind === "failed") throw new Error(`deploy failed: ${outcome.reason}`);
}
