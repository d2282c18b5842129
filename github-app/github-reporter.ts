import type { Octokit } from "@octokit/core";
import { checkRunOutput, PREVIEW_COMMENT_MARKER, type BuildOutcome } from "./report-text.ts";

export interface RepoRef {
  owner: string;
  repo: string;
}

export type DeploymentState = "queued" | "in_progress" | "success" | "failure" | "error" | "inactive";

export interface GithubReporter {
  startCheck(sha: string, environment: string): Promise<number>;
  finishCheck(checkRunId: number, environment: string, outcome: BuildOutcome): Promise<void>;
  /** A check run that completes at once (a fork PR that is not built, an archived environment). */
  skippedCheck(sha: string, environment: string, conclusion: "neutral" | "skipped" | "failure", title: string, summary: string): Promise<void>;
  createDeployment(sha: string, environment: string, options: { production: boolean; transient: boolean }): Promise<number>;
  deploymentStatus(deploymentId: number, state: DeploymentState, description: string, environment: string): Promise<void>;
  /** Marks every GitHub Deployment of the environment inactive (a closed pull request's preview). */
  deactivateEnvironment(environment: string, description: string): Promise<number>;
  /** Updates the pull request's Stasis comment in place, or creates it the first time. */
  upsertPullComment(pullNumber: number, body: string): Promise<void>;
}

/** The GitHub REST calls the App makes for one repository, as the installation. */
export function createGithubReporter(octokit: Octokit, ref: RepoRef): GithubReporter {
  const checkName = (environment: string) => `Stasis (${environment})`;
  return {
    async startCheck(sha, environment) {
      const { data } = await octokit.request("POST /repos/{owner}/{repo}/check-runs", {
        ...ref,
        name: checkName(environment),
        head_sha: sha,
        status: "in_progress",
        started_at: new Date().toISOString(),
        output: { title: `Building for ${environment}`, summary: `Building commit \`${sha.slice(0, 7)}\` and deploying it to \`${environment}\`.` },
      });
      return Number(data.id);
    },
    async finishCheck(checkRunId, environment, outcome) {
      const { conclusion, title, summary, text } = checkRunOutput(environment, outcome);
      await octokit.request("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", {
        ...ref,
        check_run_id: checkRunId,
        status: "completed",
        conclusion,
        completed_at: new Date().toISOString(),
        output: { title, summary, ...(text ? { text } : {}) },
      });
    },
    async skippedCheck(sha, environment, conclusion, title, summary) {
      await octokit.request("POST /repos/{owner}/{repo}/check-runs", {
        ...ref,
        name: checkName(environment),
        head_sha: sha,
        status: "completed",
        conclusion,
        completed_at: new Date().toISOString(),
        output: { title, summary },
      });
    },
    async createDeployment(sha, environment, options) {
      const { data } = await octokit.request("POST /repos/{owner}/{repo}/deployments", {
        ...ref,
        ref: sha,
        environment,
        auto_merge: false,
        required_contexts: [],
        production_environment: options.production,
        transient_environment: options.transient,
        description: `Stasis deploy of ${sha.slice(0, 7)}`,
      });
      if (!("id" in data)) throw new Error(`GitHub did not create a deployment for ${sha.slice(0, 7)}: ${data.message ?? "no id"}`);
      return Number(data.id);
    },
    async deploymentStatus(deploymentId, state, description, environment) {
      await octokit.request("POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", {
        ...ref,
        deployment_id: deploymentId,
        state,
        environment,
        description: description.slice(0, 140),
        auto_inactive: state === "success",
      });
    },
    async deactivateEnvironment(environment, description) {
      // Newest first; a preview has far fewer than 100 deployments in practice.
      const { data } = await octokit.request("GET /repos/{owner}/{repo}/deployments", { ...ref, environment, per_page: 100 });
      for (const deployment of data) {
        await octokit.request("POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses", { ...ref, deployment_id: Number(deployment.id), state: "inactive", environment, description: description.slice(0, 140) });
      }
      return data.length;
    },
    async upsertPullComment(pullNumber, body) {
      const existing = await findComment(octokit, ref, pullNumber);
      if (existing) await octokit.request("PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}", { ...ref, comment_id: existing, body });
      else await octokit.request("POST /repos/{owner}/{repo}/issues/{issue_number}/comments", { ...ref, issue_number: pullNumber, body });
    },
  };
}

async function findComment(octokit: Octokit, ref: RepoRef, pullNumber: number): Promise<number | null> {
  for (let page = 1; page <= 10; page++) {
    const { data } = await octokit.request("GET /repos/{owner}/{repo}/issues/{issue_number}/comments", { ...ref, issue_number: pullNumber, per_page: 100, page });
    const found = data.find((c) => c.body?.includes(PREVIEW_COMMENT_MARKER));
    if (found) return Number(found.id);
    if (data.length < 100) return null;
  }
  return null;
}
