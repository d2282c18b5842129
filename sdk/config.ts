import type { StasisConfigInput } from "../schemas/index.ts";

/** Typed helper for `stasis.config.ts`: `export default defineConfig({ project: "my-app" })`. */
export function defineConfig(config: StasisConfigInput): StasisConfigInput {
  return config;
}
