// Front door of the control plane. Other parts import only from here.
export { startEmbeddedPostgres, freePort, relocatedDataLocation, type EmbeddedPostgresOptions, type EmbeddedPostgresHandle } from "./db/embedded-postgres.ts";
export { connectDatabase } from "./db/connect.ts";
export { migrate, SCHEMA_VERSION } from "./db/migrate.ts";
export { createServer, type CreateServerOptions, type StasisServer, type RouteInfo } from "./app.ts";
export { findUnstorableInput, type UnstorableInput } from "./http/storable-input.ts";
export { ensureProject, createEnvironmentKey, createEnvironment, archiveEnvironment, type EnsureProjectOptions, type EnsureProjectResult, type CreateEnvironmentKeyOptions } from "./projects.ts";
export { StasisError, SchemaTooNewError, VersionAllocationError } from "./errors.ts";
export { createDeploymentWithNextVersion } from "./sql/allocate-version.ts";
export type { EngineConfig } from "./engine/context.ts";
export { keyringFromEnv, createKeyring, type Keyring } from "./secrets/keyring.ts";
export { parseMasterKey, generateKey } from "./secrets/crypto.ts";
export { EncryptionKeyError } from "./secrets/check-keys.ts";
export { rotateMasterKey } from "./secrets/rotate-key.ts";
