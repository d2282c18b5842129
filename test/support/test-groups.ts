// Which test files may run beside the others. "light" files change no host mount and start no task
// that CRIU freezes or runc runs — or start tasks only in `stasis runner` processes, which as root
// (CI, and wherever CRIU runs) give every task a root built from nothing (task-root.sh): no mount of
// the host is in its namespace, so another file's mounts coming and going cannot break its dumps or
// restores, and its own dumps and restores mount nothing on the host. They run in their own vitest
// process next to the "heavy" ones, which still go one file at a time. Each group shares one worker
// and its loaded modules (vitest.config.ts: `isolate: false`), so a file gives back any environment
// variable it sets. A file named in neither list is heavy — the safe default.
export const LIGHT_TEST_FILES = [
  "schemas/**/*.test.ts",
  "sdk/**/*.test.ts",
  "server/**/*.test.ts",
  "github-app/**/*.test.ts",
  "action/**/*.test.ts",
  "builder/isolated-build/**/*.test.ts",
  "builder/layer.test.ts",
  "builder/layout-store.test.ts",
  "builder/registry-store.test.ts",
  "builder/webhook-events/**/*.test.ts",
  "runner/checkpoint-store/**/*.test.ts",
  "runner/hardware-random.test.ts",
  "runner/health-server.test.ts",
  "runner/local-checkpoints.test.ts",
  "runner/scratch-dir.test.ts",
  // Plain `sleep` processes, stopped and killed: no task, no mount.
  "runner/stopped-processes.test.ts",
  "test/stop-watch.test.ts",
  "runner/workload/container-archive.test.ts",
  "runner/retry-call.test.ts",
  "runner/http-post.test.ts",
  "runner/warm-pool.test.ts",
  "runner/stack-mapper.test.ts",
  "runner/workload/criu-guard.test.ts",
  "runner/workload/criu-user.test.ts",
  "runner/workload/populate-dumped-memory.test.ts",
  "test/criu-kerndat-cache.test.ts",
  "test/server-*.test.ts",
  "test/connections-*.test.ts",
  "test/fuzz/**/*.test.ts",
  "test/cli-admin.test.ts",
  "test/cli-env.test.ts",
  // A runner without checkpoints: its tasks run in private mount namespaces CRIU never dumps.
  "test/cli-commands.test.ts",
  "test/github-app-*.test.ts",
  "test/action-*.test.ts",
  "test/security/oidc-rules.test.ts",
  "test/node-engines.test.ts",
  "test/embedded-postgres-*.test.ts",
  "test/deploy-manifests.test.ts",
  "test/platform-image-build.test.ts",
  // Builds only (images, a sandboxed build): no task runs.
  "test/runtime-image-reuse.test.ts",
  "test/security/build-isolation.test.ts",
  // `stasis dev --no-checkpoints`: its one task runs in a private mount namespace CRIU never dumps.
  // (test/cli-init.test.ts could run here too; it stays with the heavy files, whose group took
  // 40–60 s less than this one in the suite runs of 2026-12-02.)
  "test/fresh-clone-private-dir.test.ts",
  // `stasis server` and a `stasis runner --no-checkpoints` on Debian's PostgreSQL, as the server-external-postgres files beside it.
  "test/e2e-foundation-external-postgres.test.ts",
  // The admin's dashboard in chromium against a server alone: no runner, no task.
  "test/dashboard-admin-browser.test.ts",
  // Tasks only in sandboxed runner processes (see the top), no mount, no runc, no in-process runner.
  "test/e2e-durable-reports.test.ts",
  "test/e2e-waits-kinds.test.ts",
  "test/e2e-waits-durable.test.ts",
  "test/e2e-waits-race.test.ts",
  "test/dashboard-browser.test.ts",
  "test/security/task-sandbox.test.ts",
  "test/security/image-sources.test.ts",
  "test/security/unpack-layers.test.ts",
  "test/e2e-waits-state.test.ts",
  "test/e2e-waits-recovery.test.ts",
  "test/e2e-resume-holder.test.ts",
  "test/e2e-movie-tickets.test.ts",
];
