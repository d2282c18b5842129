import type { Command } from "commander";
import type { z } from "zod";
import { callStasisApi } from "../../builder/index.ts";
import { classifyCheckpoints, openCheckpointStore, runIdOfKey, totalsPerProject, type OpenedCheckpointStore, type StoredCheckpoint } from "../../runner/index.ts";
import type { CheckpointOwnersResponse, CheckpointsGcOutput, CheckpointsListOutput, StoredCheckpointView } from "../../schemas/index.ts";
import { resolveAdminTarget } from "../api-target.ts";
import { CliError, ExitCode, printResult, progress, table } from "../output.ts";

interface StoreOptions {
  checkpointStore?: string;
  checkpointDir?: string;
  checkpointRepository?: string;
  project?: string;
  minAge: string;
  json?: boolean;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function parseAge(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!match) throw new CliError(`--min-age looks like 30m, 1h or 2d, not ${JSON.stringify(text)}`, ExitCode.USAGE);
  return Number(match[1]) * UNITS[match[2]!]!;
}

function openStore(opts: StoreOptions): OpenedCheckpointStore {
  try {
    return openCheckpointStore({ kind: opts.checkpointStore, dir: opts.checkpointDir, repository: opts.checkpointRepository, defaultDir: ".stasis/checkpoints" });
  } catch (error) {
    throw new CliError(`--checkpoint-store: ${(error as Error).message}`, ExitCode.USAGE);
  }
}

/** The store's checkpoints, each with its run's project and state (asked of the server with the admin token). */
async function survey(opts: StoreOptions): Promise<{ opened: OpenedCheckpointStore; views: Array<z.infer<typeof StoredCheckpointView>> }> {
  const opened = openStore(opts);
  const minAgeMs = parseAge(opts.minAge);
  const stored: StoredCheckpoint[] = await opened.store.list().catch((error: Error) => {
    throw new CliError(`cannot list the checkpoints in ${opened.kind}:${opened.where}: ${error.message}`, ExitCode.UNREACHABLE);
  });
  const { apiUrl, adminToken } = resolveAdminTarget();
  // Keys whose first segment could not be a run id are nobody's: they stay unknown (orphaned after --min-age).
  const runIds = [...new Set(stored.map((c) => runIdOfKey(c.key)))].filter((id) => id.length <= 100);
  const owners: z.infer<typeof CheckpointOwnersResponse>["data"] = [];
  for (let at = 0; at < runIds.length; at += 1000) {
    const page = await callStasisApi<z.infer<typeof CheckpointOwnersResponse>>(apiUrl, adminToken, "POST", "/api/v1/admin/checkpoints/owners", { runIds: runIds.slice(at, at + 1000) });
    owners.push(...page.data);
  }
  const views = classifyCheckpoints(stored, owners, Date.now(), minAgeMs).filter((v) => !opts.project || v.project === opts.project);
  return { opened, views };
}

const mib = (bytes: number) => `${(bytes / (1 << 20)).toFixed(1)} MiB`;

function withStoreOptions(command: Command): Command {
  return command
    .option("--checkpoint-store <kind>", "dir or registry (default STASIS_CHECKPOINT_STORE, else dir)")
    .option("--checkpoint-dir <dir>", "dir store: the directory (default STASIS_CHECKPOINT_DIR, else .stasis/checkpoints)")
    .option("--checkpoint-repository <host/repo>", "registry store: the repository (default STASIS_CHECKPOINT_REPOSITORY, else <STASIS_REGISTRY>/checkpoints)")
    .option("--project <slug>", "only this project's checkpoints")
    .option("--min-age <age>", "a checkpoint its run does not name yet counts as orphaned only after this long (a suspend may still be reporting it)", "1h")
    .option("--json", "print JSON");
}

/** `stasis checkpoints list|gc` (admin token): what a checkpoint store holds per project, and reclaiming what no run will restore. */
export function registerCheckpointsCommands(program: Command): void {
  const checkpoints = program.command("checkpoints").description("what the checkpoint store holds, per project, and reclaiming orphans (admin token)");
  withStoreOptions(checkpoints.command("list").description("every stored checkpoint with its run, project, size and state (in-use, recent, orphaned)")).action(async (opts: StoreOptions) => {
    const { opened, views } = await survey(opts);
    const output: z.infer<typeof CheckpointsListOutput> = { store: `${opened.kind}:${opened.where}`, checkpoints: views, projects: totalsPerProject(views) };
    printResult(Boolean(opts.json), output, () =>
      views.length === 0
        ? `no checkpoints in ${output.store}`
        : [
            table([["PROJECT", "ENV", "RUN", "STATUS", "SIZE", "CREATED", "STATE"], ...views.map((v) => [v.project ?? "(unknown)", v.environment ?? "-", v.runId, v.runStatus ?? "-", mib(v.sizeBytes), v.createdAt, v.state])]),
            "",
            table([["PROJECT", "CHECKPOINTS", "STORED", "RECLAIMABLE"], ...output.projects.map((p) => [p.project ?? "(unknown)", String(p.checkpoints), mib(p.bytes), mib(p.reclaimableBytes)])]),
          ].join("\n"),
    );
  });
  withStoreOptions(checkpoints.command("gc").description("delete the checkpoints no run will restore (orphaned), keep the rest"))
    .option("--dry-run", "only say what would be deleted")
    .action(async (opts: StoreOptions & { dryRun?: boolean }) => {
      const { opened, views } = await survey(opts);
      const orphans = views.filter((v) => v.state === "orphaned");
      const deleted: typeof orphans = [];
      const failed: Array<{ location: string; error: string }> = [];
      for (const orphan of orphans) {
        if (opts.dryRun) {
          deleted.push(orphan);
          continue;
        }
        try {
          await opened.store.delete(orphan.location);
          deleted.push(orphan);
          if (!opts.json) progress(`deleted ${orphan.location} (${orphan.project ?? "unknown project"}, run ${orphan.runId}, ${mib(orphan.sizeBytes)})`);
        } catch (error) {
          failed.push({ location: orphan.location, error: (error as Error).message });
        }
      }
      const output: z.infer<typeof CheckpointsGcOutput> = {
        store: `${opened.kind}:${opened.where}`,
        dryRun: Boolean(opts.dryRun),
        deleted,
        reclaimedBytes: deleted.reduce((sum, v) => sum + v.sizeBytes, 0),
        kept: views.length - deleted.length,
        failed,
      };
      printResult(Boolean(opts.json), output, () => `${opts.dryRun ? "would delete" : "deleted"} ${deleted.length} checkpoint(s), ${mib(output.reclaimedBytes)}; kept ${output.kept}${failed.length ? `; ${failed.length} could not be deleted: ${failed.map((f) => f.error).join("; ")}` : ""}`);
      if (failed.length) process.exitCode = ExitCode.FAILURE;
    });
}
