import { readFileSync } from "node:fs";

/** What this run of the action does: deploy to an environment, archive a preview, or nothing. */
export type Plan =
  | { kind: "deploy"; environment: string; commit: CommitDetails }
  | { kind: "archive"; environment: string }
  | { kind: "skip"; reason: string };

export interface CommitDetails {
  sha?: string;
  branch?: string;
  message?: string;
  committedAt?: string;
  repository?: string;
  /** A pull request's head commit, when what was built is its merge commit (`sha`). */
  headSha?: string;
}

export interface PlanOptions {
  eventName: string;
  /** The webhook payload of the triggering event (GITHUB_EVENT_PATH). */
  payload: Record<string, any>;
  /** The `environment` input; overrides the choice for deploys. */
  environment?: string;
  env?: NodeJS.ProcessEnv;
}

export function readEventPayload(path: string | undefined): Record<string, any> {
  if (!path) return {};
  try {
    return JSON.parse(readFileSync(path, "utf8")) as Record<string, any>;
  } catch (error) {
    throw new Error(`cannot read the event payload at GITHUB_EVENT_PATH (${path}): ${(error as Error).message}`);
  }
}

const PULL_REQUEST_EVENTS = new Set(["pull_request", "pull_request_target"]);

/**
 * `production` on a push to the default branch, `preview/pr-<n>` on a pull request, archive that
 * preview when the pull request is closed. An explicit `environment` input wins for deploys.
 */
export function planFromEvent(options: PlanOptions): Plan {
  const { eventName, payload } = options;
  const env = options.env ?? process.env;
  const repository = payload.repository?.full_name ?? env.GITHUB_REPOSITORY;

  if (PULL_REQUEST_EVENTS.has(eventName)) {
    const number = payload.pull_request?.number ?? payload.number;
    if (typeof number !== "number") throw new Error(`the ${eventName} event payload has no pull request number (GITHUB_EVENT_PATH)`);
    const preview = `preview/pr-${number}`;
    if (payload.action === "closed") return { kind: "archive", environment: options.environment ?? preview };
    const head = payload.pull_request?.head ?? {};
    return {
      kind: "deploy",
      environment: options.environment ?? preview,
      // The checkout of a pull_request job is GITHUB_SHA, the merge commit of refs/pull/<n>/merge: that is what is built.
      commit: { sha: env.GITHUB_SHA ?? head.sha, ...(head.sha && head.sha !== env.GITHUB_SHA ? { headSha: head.sha } : {}), branch: head.ref ?? env.GITHUB_HEAD_REF, message: payload.pull_request?.title, repository },
    };
  }

  const ref: string | undefined = payload.ref ?? env.GITHUB_REF;
  const branch = ref?.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : env.GITHUB_REF_NAME;
  const commit: CommitDetails = {
    sha: payload.after ?? payload.head_commit?.id ?? env.GITHUB_SHA,
    branch,
    message: payload.head_commit?.message,
    committedAt: payload.head_commit?.timestamp,
    repository,
  };
  if (options.environment) return { kind: "deploy", environment: options.environment, commit };
  if (eventName === "push" && payload.deleted === true) return { kind: "skip", reason: `the push deleted ${ref}: nothing to deploy` };

  const defaultBranch: string | undefined = payload.repository?.default_branch;
  if (eventName === "push" || eventName === "workflow_dispatch") {
    if (!defaultBranch) throw new Error(`cannot tell the default branch from the ${eventName} event payload: set the environment input`);
    if (branch === defaultBranch) return { kind: "deploy", environment: "production", commit };
    return { kind: "skip", reason: `${ref ?? "this ref"} is not the default branch (${defaultBranch}): nothing deployed. Set the environment input to deploy other branches.` };
  }
  throw new Error(`cannot pick an environment for the "${eventName}" event: set the environment input (production, staging, development or preview/<name>)`);
}
