import { defineConfig } from "stasis/sdk";

// Many attempts: runner kills end attempts as LOST, and the chaos run measures recovery, not retry limits.
export default defineConfig({ project: "chaos", retries: { default: { maxAttempts: 12, minTimeoutInMs: 200, maxTimeoutInMs: 2000, factor: 2 } } });
