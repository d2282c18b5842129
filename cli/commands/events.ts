import type { Command } from "commander";
import { events } from "../../sdk/index.ts";
import { configureSdkFromTarget } from "../api-target.ts";
import { printResult } from "../output.ts";
import { parseJsonArg } from "../parse-json-arg.ts";

export function registerEventsCommands(program: Command): void {
  const group = program.command("events").description("send events to waiting runs");
  group
    .command("send <event>")
    .description("deliver an event; runs waiting for it (and matching its filter) resume")
    .option("--payload <json>", "the event payload, as JSON", "null")
    .option("--id <id>", "idempotency id: a second event with this id is ignored")
    .option("--json", "print JSON")
    .action(async (event: string, opts: { payload: string; id?: string; json?: boolean }) => {
      configureSdkFromTarget();
      const result = await events.trigger({ event, payload: parseJsonArg("--payload", opts.payload), id: opts.id });
      printResult(Boolean(opts.json), result, () =>
        result.duplicate ? `event ${result.id} was already delivered; ignored` : `event ${result.id} delivered to ${result.matchedWaitpoints} waiting run(s)`,
      );
    });
}
