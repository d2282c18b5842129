// Deploy tokens for CI: GitHub OIDC exchange, minting from an API key, archiving a preview.
export { oidcRoutes } from "./routes.ts";
export { oidcConfigFromEnv, GITHUB_ACTIONS_ISSUER, type OidcConfig } from "./config.ts";
export { createOidcVerifier, type OidcVerifier, type CiClaims } from "./verify-oidc-token.ts";
export { principalForDeployToken, mintDeployToken, ensureTargetEnvironment, normalizeRepository, type TargetEnvironment, type MintOptions } from "./deploy-tokens.ts";
