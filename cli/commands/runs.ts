import type { Command } from "commander";
import { runs } from "../../sdk/index.ts";
import { configureSdkFromTarget } from "../api-target.ts";
import { formatRun, formatRunList } from "../format-run.ts";
import { printResult } from "../output.ts";

export function registerRunsCommands(program: Command): void {
  const group = program.command("runs").description("inspect and manage runs");

  group
    .command("get <id>")
    .description("show one run")
    .option("--json", "print JSON")
    .action(async (id: string, opts: { json?: boolean }) => {
      configureSdkFromTarget();
      const run = await runs.retrieve(id);
      printResult(Boolean(opts.json), run, () => formatRun(run));
    });

  group
    .command("list")
    .description("list runs, newest first")
    .option("--status <status>", "only runs in this status")
    .option("--task <task>", "only runs of this task")
    .option("--tag <tag>", "only runs with this tag")
    .option("--limit <n>", "how many", "25")
    .option("--json", "print JSON")
    .action(async (opts: { status?: string; task?: string; tag?: string; limit: string; json?: boolean }) => {
      configureSdkFromTarget();
      const page = await runs.list({ status: opts.status, task: opts.task, tag: opts.tag, limit: Number(opts.limit) });
      printResult(Boolean(opts.json), page, () => formatRunList(page.data));
    });

  group
    .command("cancel <id>")
    .description("cancel a run (a suspended run's checkpoint is deleted)")
    .option("--json", "print JSON")
    .action(async (id: string, opts: { json?: boolean }) => {
      configureSdkFromTarget();
      const run = await runs.cancel(id);
      printResult(Boolean(opts.json), run, () => formatRun(run));
    });

  group
    .command("replay <id>")
    .description("start a new run with the same payload, optionally on another version")
    .option("--version <version>", "run on this version")
    .option("--json", "print JSON")
    .action(async (id: string, opts: { version?: string; json?: boolean }) => {
      configureSdkFromTarget();
      const handle = await runs.replay(id, { version: opts.version });
      printResult(Boolean(opts.json), handle, () => `replayed as ${handle.id}`);
    });

  group
    .command("logs <id>")
    .description("print a run's logs")
    .option("-f, --follow", "keep printing until the run finishes")
    .option("--json", "print one JSON line per log line")
    .action(async (id: string, opts: { follow?: boolean; json?: boolean }) => {
      configureSdkFromTarget();
      let after = 0;
      for (;;) {
        const page = await runs.logs(id, { after, waitMs: opts.follow ? 10_000 : 0 });
        for (const line of page.data) {
          process.stdout.write(opts.json ? `${JSON.stringify(line)}\n` : `${line.ts} ${line.level.toUpperCase().padEnd(5)} ${line.message}\n`);
        }
        after = page.next;
        if (!opts.follow || (page.runFinished && page.data.length === 0)) return;
      }
    });
}
