import type { DeploymentView } from "../../schemas/index.ts";

const cell = (value: string) => value.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");

/** The job summary of a deploy: version, environment, image and a table of the tasks. */
export function deploySummary(d: DeploymentView): string {
  const lines = [
    `## Stasis: deployed ${d.version} to \`${d.environment}\``,
    "",
    "| | |",
    "|---|---|",
    `| Version | \`${d.version}\`${d.promoted ? " (promoted)" : " (not promoted)"} |`,
    `| Environment | \`${cell(d.environment)}\` |`,
    `| Image | \`${cell(d.imageRef ?? "-")}\` |`,
    `| Deployment | \`${d.id}\` |`,
  ];
  if (d.commit?.sha) lines.push(`| Commit | \`${d.commit.sha.slice(0, 12)}\`${d.commit.headSha ? ` (merge of head \`${d.commit.headSha.slice(0, 12)}\`)` : ""}${d.commit.branch ? ` on \`${cell(d.commit.branch)}\`` : ""} |`);
  lines.push("", `### Tasks (${d.tasks.length})`, "");
  if (d.tasks.length === 0) lines.push("_This version has no tasks._");
  else lines.push("| Task |", "|---|", ...d.tasks.map((task) => `| \`${cell(task)}\` |`));
  return lines.join("\n") + "\n";
}

export function archiveSummary(project: string, environment: string, alreadyArchived: boolean): string {
  return [
    `## Stasis: archived \`${environment}\``,
    "",
    alreadyArchived
      ? `The preview environment \`${environment}\` of \`${project}\` was already archived.`
      : `The pull request was closed: \`${environment}\` of \`${project}\` no longer accepts new runs; runs already started finish.`,
    "",
  ].join("\n");
}

export function skipSummary(reason: string): string {
  return `## Stasis: nothing deployed\n\n${reason}\n`;
}

export function failureSummary(message: string, environment?: string): string {
  return [`## Stasis: deploy failed${environment ? ` for \`${cell(environment)}\`` : ""}`, "", "```", message, "```", ""].join("\n");
}
