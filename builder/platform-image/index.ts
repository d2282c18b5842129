// Stasis's own server/runner image (Node, CRIU, the Stasis package), built reproducibly from a checkout.
export { buildPlatformImage, PLATFORM_APP_DIR, PLATFORM_PROGRAMS, type BuildPlatformImageOptions, type PlatformImage } from "./build-platform-image.ts";
