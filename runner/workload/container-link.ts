import { copyFile, mkdir, rm, stat } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { Duplex, PassThrough } from "node:stream";

/** Inside every task container: the link dir (socket, shim, `detached` marker). */
export const LINK_MOUNT = "/run/stasis-link";
export const SHIM_SOURCE = path.join(import.meta.dirname, "container-shim.mjs");
const [HELLO, IPC, STDOUT, STDERR, EXIT, DETACH] = [0, 1, 2, 3, 4, 5];
const DETACH_TIMEOUT_MS = 10_000;

/**
 * The runner's end of one container's connection to its shim (container-shim.mjs has the frame
 * format): a unix socket in a host dir bound at LINK_MOUNT, demultiplexed into the task's stdout,
 * stderr and ipc streams. The streams stay the same across detach/reconnect (a checkpoint that leaves
 * the task running); they end with `close()`.
 */
export interface ContainerLink {
  readonly dir: string;
  readonly stdout: PassThrough;
  readonly stderr: PassThrough;
  readonly ipc: Duplex;
  /** What the shim said when the task ended (its EXIT frame), if it got to say it. */
  exitNote(): { code: number | null; signal: string | null; oomKills: number | null } | null;
  /** Resolves when the shim is connected (now or next). */
  connected(): Promise<void>;
  /** Hands the shim the task's environment (first start only). */
  hello(env: Record<string, string>): void;
  /** Stops listening, has the shim drop its connection, and resolves once its socket is closed. */
  detach(): Promise<void>;
  /** Listens again (after a checkpoint that left the task running). */
  listen(): Promise<void>;
  /** Resolves when the connection has ended by itself (the shim exits with the task), after its last bytes. */
  ended(): Promise<void>;
  /** Ends the streams and removes the dir. */
  close(): Promise<void>;
}

/** A fresh link dir `dir` with the shim in it, listening. */
export async function openLink(dir: string): Promise<ContainerLink> {
  await mkdir(dir, { recursive: true, mode: 0o711 });
  await copyFile(SHIM_SOURCE, path.join(dir, "shim.mjs"));
  const socketPath = path.join(dir, "ipc.sock");
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let socket: net.Socket | null = null;
  let server: net.Server | null = null;
  let waiters: Array<() => void> = [];
  let endWaiters: Array<() => void> = [];
  let detaching = false;
  let exitNote: ReturnType<ContainerLink["exitNote"]> = null;
  const queued: Buffer[] = [];

  const frame = (type: number, payload: Buffer) => {
    const header = Buffer.alloc(5);
    header.writeUInt8(type, 0);
    header.writeUInt32BE(payload.length, 1);
    return Buffer.concat([header, payload]);
  };
  const send = (bytes: Buffer) => (socket && !detaching ? socket.write(bytes) : queued.push(bytes));

  const ipc = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      send(frame(IPC, chunk));
      callback();
    },
  });

  function accept(conn: net.Socket) {
    if (socket) return void conn.destroy(); // one shim per link
    socket = conn;
    detaching = false;
    let input = Buffer.alloc(0);
    conn.on("data", (data: Buffer) => {
      input = Buffer.concat([input, data]);
      while (input.length >= 5) {
        const length = input.readUInt32BE(1);
        if (input.length < 5 + length) break;
        const [type, payload] = [input.readUInt8(0), Buffer.from(input.subarray(5, 5 + length))];
        input = input.subarray(5 + length);
        if (type === IPC) ipc.push(payload);
        else if (type === STDOUT) stdout.write(payload);
        else if (type === STDERR) stderr.write(payload);
        else if (type === EXIT) exitNote = JSON.parse(payload.toString("utf8")) as typeof exitNote;
      }
    });
    conn.on("error", () => {});
    conn.once("close", () => {
      if (socket === conn) socket = null;
      if (!detaching) for (const done of endWaiters.splice(0)) done();
    });
    for (const bytes of queued.splice(0)) conn.write(bytes);
    for (const done of waiters.splice(0)) done();
  }

  async function listen() {
    await rm(socketPath, { force: true });
    const s = net.createServer(accept);
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(socketPath, () => resolve());
    });
    server = s;
  }

  async function stopListening() {
    const s = server;
    server = null;
    // Not awaited: a server's close waits for its open connection, which detach() ends next.
    s?.close();
    await rm(socketPath, { force: true });
  }

  await listen();

  return {
    dir,
    stdout,
    stderr,
    ipc,
    exitNote: () => exitNote,
    connected: () => (socket ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    hello: (env) => send(frame(HELLO, Buffer.from(JSON.stringify({ env })))),
    listen,
    async detach() {
      await stopListening();
      const conn = socket;
      if (!conn) return;
      const marker = path.join(dir, "detached");
      await rm(marker, { force: true });
      conn.write(frame(DETACH, Buffer.alloc(0)));
      detaching = true;
      const closed = new Promise<void>((resolve) => (conn.destroyed ? resolve() : conn.once("close", () => resolve())));
      conn.once("end", () => conn.end());
      const deadline = Date.now() + DETACH_TIMEOUT_MS;
      await closed;
      // Our end is closed; the shim's socket is gone once it says so (its fd closed, nothing for CRIU to see).
      for (let wait = 1; !(await stat(marker).catch(() => null)); wait = Math.min(wait * 2, 10)) {
        if (Date.now() > deadline) throw new Error(`the task's shim did not let go of its connection within ${DETACH_TIMEOUT_MS} ms`);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    },
    ended: () => (socket === null && !detaching ? Promise.resolve() : new Promise<void>((resolve) => endWaiters.push(resolve))),
    async close() {
      await stopListening();
      socket?.destroy();
      stdout.end();
      stderr.end();
      ipc.push(null);
      for (const done of endWaiters.splice(0)) done();
      waiters = [];
      endWaiters = [];
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
}
