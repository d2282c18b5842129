import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{schemas,sdk,builder,server,runner,github-app,action,cli,test}/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: "forks",
    maxWorkers: 2,
    globalSetup: ["test/support/global-setup.ts"],
  },
});
