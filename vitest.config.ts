import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{schemas,sdk,builder,server,runner,github-app,action,cli,test}/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: "forks",
    // One test file at a time: files that freeze and restore processes with CRIU, or run runc
    // containers, change the host's mount table while others start tasks, and a task started then
    // copies mounts that are gone by its restore. Serial costs ~3 minutes and keeps the suite exact.
    fileParallelism: false,
    maxWorkers: 1,
    globalSetup: ["test/support/global-setup.ts"],
  },
});
