// github-app/: verified GitHub webhooks → clone → builder's deployProject → Stasis; per-PR previews;
// check runs, deployments and a PR comment reported back to GitHub.
export { startGithubApp, type StartGithubAppOptions, type GithubAppServer } from "./start-github-app.ts";
export { loadGithubAppConfig, gitUrlFor, type GithubAppConfig } from "./config.ts";
export { WEBHOOK_PATH } from "./webhook-server.ts";
export { projectSlugFor, previewEnvironment } from "./project-slug.ts";
export { PREVIEW_COMMENT_MARKER } from "./report-text.ts";
