// The supervisor's fd contract (supervisor.sh): what the task gets, and what the runtime reads on fd 4.
import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { childExit } from "./child-exit.ts";
import { SUPERVISOR } from "./namespace.ts";

const text = (stream: Readable) =>
  new Promise<string>((resolve) => {
    let out = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => (out += chunk));
    stream.once("close", () => resolve(out));
  });

/** Runs `bash -c SUPERVISOR sh -c script` with fds 0–5 as the runtime (plus one leaked fd, 5) would. */
function supervise(script: string) {
  const child = spawn("bash", ["-c", SUPERVISOR, "sh", "-c", script], { stdio: ["pipe", "pipe", "pipe", "pipe", "pipe", "pipe"] });
  const [, stdout, stderr, ipc, status] = child.stdio as unknown as Readable[];
  return { child, stdout: text(stdout), stderr: text(stderr), ipc: text(ipc), status: text(status) };
}

describe("the namespace supervisor", () => {
  it("gives the task stdin from /dev/null, stdout, stderr and ipc on 0–3, and nothing else", async () => {
    const s = supervise('for f in /proc/$$/fd/*; do [ -e "$f" ] && printf "%s " "${f##*/}"; done; readlink /proc/$$/fd/0 >&2; echo ipc >&3');
    expect(await s.stdout).toBe("0 1 2 3 ");
    expect((await s.stderr).trim()).toBe("/dev/null");
    expect(await s.ipc).toBe("ipc\n");
    expect(await s.status).toBe("exit 0\n");
  });

  it("reports the task's exit code on fd 4 and exits with it", async () => {
    const s = supervise("exit 7");
    expect(await s.status).toBe("exit 7\n");
    expect(await childExit(s.child)).toEqual({ code: 7, signal: null });
  });

  it("reports a task killed by signal N as 128+N", async () => {
    const s = supervise("kill -TERM $$");
    expect(await s.status).toBe("exit 143\n");
    expect(await childExit(s.child)).toEqual({ code: 143, signal: null });
  });
});
