import type { Command } from "commander";

type Register = (program: Command) => void;
type Load = () => Promise<Register[]>;

const serve: Load = async () => [(await import("./commands/serve.ts")).registerServeCommands];
const deploy: Load = async () => [(await import("./commands/deploy.ts")).registerDeployCommands];
const admin: Load = async () => [(await import("./commands/admin.ts")).registerAdminCommands, (await import("./commands/platform-image.ts")).registerPlatformImageCommand];

/** Each top-level command with what registers it, in the order help lists them. */
const COMMAND_MODULES: Record<string, Load> = {
  init: async () => [(await import("./commands/init.ts")).registerInitCommand],
  dev: async () => [(await import("./commands/dev.ts")).registerDevCommand],
  server: serve,
  runner: serve,
  build: deploy,
  deploy,
  promote: deploy,
  rollback: deploy,
  deployments: deploy,
  trigger: async () => [(await import("./commands/trigger.ts")).registerTriggerCommand],
  runs: async () => [(await import("./commands/runs.ts")).registerRunsCommands],
  events: async () => [(await import("./commands/events.ts")).registerEventsCommands],
  "github-app": async () => [(await import("./commands/github-app.ts")).registerGithubAppCommand],
  env: async () => [(await import("./commands/env.ts")).registerEnvCommands],
  webhooks: async () => [(await import("./commands/webhooks.ts")).registerWebhooksCommands],
  integrations: async () => [(await import("./commands/integrations.ts")).registerIntegrationsCommands],
  schedules: async () => [(await import("./commands/schedules.ts")).registerSchedulesCommands],
  projects: admin,
  environments: admin,
  keys: admin,
  admin,
  checkpoints: async () => [(await import("./commands/checkpoints.ts")).registerCheckpointsCommands],
};

/**
 * The register functions a command line needs. Loading every command's module took ~2 s of CPU (the
 * server, the runner, the builder and their packages) even for `stasis --version`: a known command
 * loads its own module, `--version` none, and help or an unknown word all of them (help lists them).
 */
export async function commandsFor(args: string[]): Promise<Register[]> {
  const word = args.find((arg) => !arg.startsWith("-"));
  if (word === undefined && args.some((arg) => arg === "-V" || arg === "--version")) return [];
  const load = word !== undefined && Object.hasOwn(COMMAND_MODULES, word) ? COMMAND_MODULES[word] : undefined;
  if (load) return load();
  const loaded = await Promise.all([...new Set(Object.values(COMMAND_MODULES))].map((one) => one()));
  return [...new Set(loaded.flat())];
}
