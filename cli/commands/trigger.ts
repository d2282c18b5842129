import type { Command } from "commander";
import { runs, tasks } from "../../sdk/index.ts";
import { configureSdkFromTarget } from "../api-target.ts";
import { formatRun } from "../format-run.ts";
import { ExitCode, printResult, progress } from "../output.ts";
import { parseJsonArg } from "../parse-json-arg.ts";

export function registerTriggerCommand(program: Command): void {
  program
    .command("trigger <task>")
    .description("start a run of a task")
    .option("--payload <json>", "the payload, as JSON", "null")
    .option("--idempotency-key <key>", "return the existing run for this key instead of starting another")
    .option("--delay <duration>", "start later: 30s, 5m, 2h or an ISO date")
    .option("--tag <tag...>", "tags for the run")
    .option("--version <version>", "run on this deployed version")
    .option("--wait", "wait for the run to finish and print it")
    .option("--timeout <ms>", "with --wait: give up after this many ms", "600000")
    .option("--json", "print JSON")
    .action(async (task: string, opts: { payload: string; idempotencyKey?: string; delay?: string; tag?: string[]; version?: string; wait?: boolean; timeout: string; json?: boolean }) => {
      configureSdkFromTarget();
      const payload = parseJsonArg("--payload", opts.payload);
      const handle = await tasks.trigger(task, payload, {
        ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}),
        ...(opts.delay ? { delay: opts.delay } : {}),
        ...(opts.tag ? { tags: opts.tag } : {}),
        ...(opts.version ? { version: opts.version } : {}),
      });
      if (!opts.wait) {
        const run = await runs.retrieve(handle.id);
        return printResult(Boolean(opts.json), run, () => `triggered ${task}: ${handle.id}${handle.isCached ? " (existing run for that idempotency key)" : ""}`);
      }
      if (!opts.json) progress(`triggered ${task}: ${handle.id}, waiting…`);
      const run = await runs.poll(handle.id, { timeoutMs: Number(opts.timeout) });
      printResult(Boolean(opts.json), run, () => formatRun(run));
      if (run.status !== "COMPLETED") process.exitCode = ExitCode.RUN_FAILED;
    });
}
