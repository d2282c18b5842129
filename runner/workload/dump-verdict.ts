import { writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { shellQuote } from "./shell-quote.ts";

/**
 * How long criu holds a dumped task frozen for its verdict before it lets the task go on (the dump
 * then counts as not taken). The runner decides as soon as the server answers the wait's call; this
 * bounds the freeze when the server is down and that call keeps retrying.
 */
export const VERDICT_WAIT_S = 60;

/** What the runner writes into the dump's work dir once it has decided: the file's name is the verdict. */
const GO = "verdict-go";
const NO = "verdict-no";

/**
 * A dump whose outcome is decided while CRIU runs: criu dumps the task, then, with the task still
 * frozen, runs its `post-dump` action script, which waits until `verdict` has settled. true: the
 * script exits 0 and criu ends the task as after any dump. false (or `verdict` rejected): it exits 1,
 * and CRIU treats the dump as failed — the task goes on exactly where it was, as if no dump had begun.
 * A dump that fails before that point never asks.
 *
 * The script waits on a file in criu's own work dir (`workDir`, the runner's alone): criu gives its
 * action scripts neither stdin nor the fds it inherited. It looks before its first sleep, and the
 * runner usually decided long before CRIU finished: most dumps pay one `sh` and a `test`.
 * Returns the script for `--action-script`. `first`: a shell command run at post-dump before anything
 * else (the task frozen, as CRIU left it); its failure fails the dump. Without `verdict` the script
 * runs only that.
 *
 * With `stopTree` (the dumped tree's root PID, criu run with `--leave-running`), a go stops every
 * process of the tree before criu lets it go: criu has finished with its network locks and link
 * remaps by then, as for any task that goes on, and the pending SIGSTOP takes effect the moment criu
 * detaches (what criu's own `--leave-stopped` does, minus leaving those locked).
 */
export function postDumpScript(workDir: string, { verdict, stopTree, first }: { verdict?: Promise<boolean>; stopTree?: number; first?: string }): string {
  const script = path.join(workDir, "post-dump.sh");
  const go = shellQuote(path.join(workDir, GO));
  const no = shellQuote(path.join(workDir, NO));
  const polls = VERDICT_WAIT_S * 200; // a 5 ms sleep each, at least
  const waitForVerdict = [
    ...(stopTree === undefined
      ? []
      : [
          // Its list is read before the loop: the recursion reusing `$c` does not disturb it.
          'stop_tree() { kill -STOP "$1" 2>/dev/null; for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do stop_tree "$c"; done; }',
        ]),
    "i=0",
    `while [ ! -e ${go} ]; do`,
    `  [ -e ${no} ] && exit 1`,
    `  i=$((i + 1)); [ "$i" -gt ${polls} ] && exit 1`,
    "  sleep 0.005",
    "done",
    ...(stopTree === undefined ? [] : [`stop_tree ${stopTree}`]),
  ];
  // Synchronous: it is on the dump's critical path, and a small file in the runner's own work dir.
  writeFileSync(
    script,
    [
      "#!/bin/sh",
      // criu runs action scripts at every stage of a dump; only the end of it does anything.
      '[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0',
      ...(first === undefined ? [] : [`${first} || exit 1`]),
      ...(verdict === undefined ? [] : waitForVerdict),
      "",
    ].join("\n"),
    { mode: 0o755 }, // criu may run as the task's user (criu-user.ts): no secret in it
  );
  // The dir may be gone by then (the dump failed early and was cleaned up): nothing waits for the file.
  const decide = (go: boolean) => writeFile(path.join(workDir, go ? GO : NO), "").catch(() => {});
  void verdict?.then(decide, () => decide(false));
  return script;
}
