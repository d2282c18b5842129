import type { RunView } from "../schemas/index.ts";
import { table } from "./output.ts";

export function formatRun(run: RunView): string {
  const lines = [
    `run       ${run.id}`,
    `task      ${run.taskId}`,
    `status    ${run.status}`,
    `version   ${run.version ?? "-"} (${run.environment})`,
    `attempts  ${run.attempts}`,
    `created   ${run.createdAt}`,
  ];
  if (run.completedAt) lines.push(`finished  ${run.completedAt}${run.durationMs !== null ? ` (${run.durationMs} ms)` : ""}`);
  if (run.status === "COMPLETED") lines.push(`output    ${JSON.stringify(run.output)}`);
  if (run.error) lines.push(`error     ${run.error.name}: ${run.error.message}`);
  return lines.join("\n");
}

export function formatRunList(runs: RunView[]): string {
  if (runs.length === 0) return "no runs";
  return table([["ID", "TASK", "STATUS", "VERSION", "ATTEMPTS", "CREATED"], ...runs.map((r) => [r.id, r.taskId, r.status, r.version ?? "-", String(r.attempts), r.createdAt])]);
}
