import type { Command } from "commander";
import pino from "pino";
import { loadGithubAppConfig, startGithubApp } from "../../github-app/index.ts";
import { CliError, ExitCode, printResult } from "../output.ts";

export function registerGithubAppCommand(program: Command): void {
  program
    .command("github-app")
    .description("run the GitHub App: webhooks at /api/github/webhooks → build → deploy (GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_WEBHOOK_SECRET, STASIS_API_URL, STASIS_ADMIN_TOKEN)")
    .option("--host <host>", "listen address", "127.0.0.1")
    .option("--port <port>", "listen port", "3040")
    .option("--json", "print {\"url\"} when listening")
    .action(async (opts: { host: string; port: string; json?: boolean }) => {
      let config;
      try {
        config = loadGithubAppConfig();
      } catch (error) {
        throw new CliError((error as Error).message, ExitCode.USAGE);
      }
      const log = pino({ level: process.env.STASIS_LOG_LEVEL ?? "info" }, pino.destination(2));
      const app = await startGithubApp({ config, host: opts.host, port: Number(opts.port), log });
      printResult(Boolean(opts.json), { url: app.url }, () => `stasis github-app listening on ${app.url} (webhooks at ${app.webhookUrl})`);
      const stop = async () => {
        await app.close();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop());
      process.once("SIGTERM", () => void stop());
    });
}
