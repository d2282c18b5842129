import { defineConfig } from "stasis/sdk";

export default defineConfig({
  project: "movie-tickets",
  dirs: ["trigger"],
  maxDuration: 3600,
});
