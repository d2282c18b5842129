// What the App writes to GitHub: check-run output and the pull-request comment (pure functions).
import type { DeploymentView } from "../schemas/index.ts";

export const PREVIEW_COMMENT_MARKER = "<!-- stasis:preview -->";
const LOG_TAIL_LINES = 60;

export type BuildOutcome =
  | { kind: "deployed"; deployment: DeploymentView; log: string[] }
  | { kind: "failed"; reason: string; log: string[] }
  | { kind: "canceled"; reason: string; log: string[] };

export interface CheckOutput {
  conclusion: "success" | "failure" | "cancelled";
  title: string;
  summary: string;
  text: string;
}

export function checkRunOutput(environment: string, outcome: BuildOutcome): CheckOutput {
  const text = logTail(outcome.log);
  if (outcome.kind === "deployed") {
    const d = outcome.deployment;
    const summary = [
      `| | |`,
      `|---|---|`,
      `| Version | \`${d.version}\`${d.promoted ? " (promoted)" : ""} |`,
      `| Environment | \`${d.environment}\` |`,
      `| Image digest | \`${d.imageDigest ?? "-"}\` |`,
      `| Image | \`${d.imageRef ?? "-"}\` |`,
      `| Tasks | ${d.tasks.map((t) => `\`${t}\``).join(", ") || "none"} |`,
    ].join("\n");
    return { conclusion: "success", title: `Deployed ${d.version} to ${d.environment}`, summary, text };
  }
  if (outcome.kind === "canceled") return { conclusion: "cancelled", title: `Canceled: ${outcome.reason}`, summary: `The build for \`${environment}\` was canceled: ${outcome.reason}.`, text };
  return { conclusion: "failure", title: `Build failed for ${environment}`, summary: `The build for \`${environment}\` failed:\n\n\`\`\`\n${truncate(outcome.reason, 4000)}\n\`\`\``, text };
}

export interface PreviewCommentInput {
  environment: string;
  project: string;
  stasisApiUrl: string;
  sha: string;
  outcome?: BuildOutcome;
  archived?: boolean;
}

/** One comment per pull request, rewritten in place on every push (found again by its marker). */
export function previewComment(input: PreviewCommentInput): string {
  const { environment, project, sha } = input;
  const lines = [PREVIEW_COMMENT_MARKER, `### Stasis preview \`${environment}\``, ""];
  if (input.archived) {
    lines.push(`The pull request is closed: \`${environment}\` is archived. New triggers are refused; runs already started finish. Its images stay listed.`);
    return lines.join("\n");
  }
  const outcome = input.outcome;
  if (!outcome) lines.push(`Building commit \`${sha.slice(0, 7)}\`…`);
  else if (outcome.kind === "deployed") {
    const d = outcome.deployment;
    const firstTask = d.tasks[0] ?? "<task-id>";
    lines.push(
      `| | |`,
      `|---|---|`,
      `| Version | \`${d.version}\` (commit \`${sha.slice(0, 7)}\`) |`,
      `| Tasks | ${d.tasks.map((t) => `\`${t}\``).join(", ") || "none"} |`,
      `| Image digest | \`${d.imageDigest ?? "-"}\` |`,
      "",
      `Trigger a run against this preview with an API key of \`${project}/${environment}\` (an admin mints one with \`POST ${input.stasisApiUrl}/api/v1/admin/projects/${project}/environments/${encodeURIComponent(environment)}/keys\`):`,
      "",
      "```sh",
      `STASIS_API_URL=${input.stasisApiUrl} STASIS_API_KEY=<key of ${environment}> npx stasis trigger ${firstTask} --payload '{}' --version ${d.version}`,
      "```",
    );
  } else if (outcome.kind === "canceled") lines.push(`The build of \`${sha.slice(0, 7)}\` was canceled: ${outcome.reason}.`);
  else lines.push(`The build of \`${sha.slice(0, 7)}\` failed:`, "", "```", truncate(outcome.reason, 2000), "```");
  return lines.join("\n");
}

function logTail(log: string[]): string {
  if (log.length === 0) return "";
  const tail = log.slice(-LOG_TAIL_LINES);
  return truncate(`### Build log (last ${tail.length} lines)\n\n\`\`\`\n${tail.join("\n")}\n\`\`\``, 60_000);
}

const truncate = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);
