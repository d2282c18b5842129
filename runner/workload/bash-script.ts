/**
 * argv running `script` with bash (`$0` and the positional parameters from `args`), never sourcing the
 * host's startup files. Node's pipes are sockets, and a non-interactive bash whose stdin is a socket
 * takes itself for a command run by rshd/sshd: it sources /etc/bash.bashrc and ~/.bashrc when SHLVL
 * is below 2, as under a runner started by systemd or a container's entrypoint. A .bashrc running
 * `pyenv init` in every criu guard left a chaos run's whole process group stopped. `--norc` ends that.
 */
export function bashScript(bash: string, script: string, args: string[] = []): string[] {
  return [bash, "--norc", "-c", script, ...args];
}
