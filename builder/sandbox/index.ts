// What builds use to run untrusted code: the mount-and-drop script and the
// path checks that decide what to expose past directories an unprivileged user cannot enter.
export { SANDBOX_MOUNT_SCRIPT, sandboxArgv, type SandboxMounts, type SandboxOp } from "./mount-script.ts";
export { within, unreachableAncestor, readableByOthers } from "./paths.ts";
