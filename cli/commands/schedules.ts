import type { Command } from "commander";
import { callStasisApi } from "../../builder/index.ts";
import type { ScheduleView } from "../../schemas/index.ts";
import { resolveApiTarget } from "../api-target.ts";
import { printResult, table } from "../output.ts";

function formatSchedules(data: ScheduleView[]): string {
  if (data.length === 0) return "no schedules";
  const rows = data.map((s) => [s.id, s.task, s.type.toLowerCase(), s.cron, s.timezone, s.active ? (s.nextRun ?? "-") : "inactive", s.lastRun ?? "-", s.externalId ?? ""]);
  return table([["ID", "TASK", "TYPE", "CRON", "TIMEZONE", "NEXT RUN", "LAST RUN", "EXTERNAL ID"], ...rows]);
}

export function registerSchedulesCommands(program: Command): void {
  const group = program.command("schedules").description("cron schedules of the environment (declarative from the promoted version, imperative from app code)");
  const api = <T>(method: string, path: string, body?: unknown) => {
    const { apiUrl, apiKey } = resolveApiTarget();
    return callStasisApi<T>(apiUrl, apiKey, method, path, body);
  };

  group
    .command("list")
    .description("every schedule with its next run")
    .option("--task <task>", "only this task's schedules")
    .option("--json", "print JSON")
    .action(async (opts: { task?: string; json?: boolean }) => {
      const result = await api<{ data: ScheduleView[] }>("GET", `/api/v1/schedules${opts.task ? `?task=${encodeURIComponent(opts.task)}` : ""}`);
      printResult(Boolean(opts.json), result, () => formatSchedules(result.data));
    });

  for (const [name, description] of [
    ["deactivate", "stop a schedule's ticks"],
    ["activate", "start a schedule again from its next tick (missed ticks are not run)"],
  ] as const) {
    group
      .command(`${name} <id>`)
      .description(description)
      .option("--json", "print JSON")
      .action(async (id: string, opts: { json?: boolean }) => {
        const result = await api<ScheduleView>("POST", `/api/v1/schedules/${encodeURIComponent(id)}/${name}`, {});
        printResult(Boolean(opts.json), result, () => formatSchedules([result]));
      });
  }

  group
    .command("delete <id>")
    .description("delete an imperative schedule")
    .option("--json", "print JSON")
    .action(async (id: string, opts: { json?: boolean }) => {
      const result = await api<{ id: string; deleted: boolean }>("DELETE", `/api/v1/schedules/${encodeURIComponent(id)}`);
      printResult(Boolean(opts.json), result, () => (result.deleted ? `deleted ${id}` : `${id} was already gone`));
    });
}
