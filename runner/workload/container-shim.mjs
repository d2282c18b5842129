// The container workload's relay, PID 1 of every task container (run by the image's own `node`).
// Plain JavaScript with Node built-ins only: it is bind-mounted into containers, not bundled.
//
//   node container-shim.mjs <socket> <command> [args…]
//
// It connects to the runner's unix socket <socket> (in a dir the runner binds into the container),
// reads one HELLO frame carrying the task's environment (so the variables never reach the engine's
// container config or a checkpoint's metadata), and starts the task with stdout/stderr pipes and fd 3
// a socket, as the process runtime does. Everything then goes over the one connection as frames:
//
//   frame := type (1 byte) · length (uint32, big-endian) · payload
//   runner → shim: 0 HELLO (JSON {env}), 1 IPC bytes for the task's fd 3, 5 DETACH
//   shim → runner: 1 IPC bytes from fd 3, 2 STDOUT, 3 STDERR, 4 EXIT (JSON {code, signal, oomKills}):
//   how the task ended, with the container's count of kernel OOM kills (Podman reports
//   OOMKilled=false after one, so the shim reads its own memory cgroup)
//
// DETACH comes before a checkpoint: CRIU cannot dump a socket whose peer is outside the container.
// The shim ends the connection (its pending frames flushed first), and once the socket is closed it
// creates the file `detached` beside <socket>, which the runner waits for. Output meanwhile is kept
// in memory. Then the shim tries to connect again every few milliseconds: after a checkpoint that
// left the task running, the runner listens again; after a restore — on any host — the restoring
// runner listens on the same path inside the container (its own dir, bound where the old one was).
// The shim exits with the task's code, or 128+N when the task was killed by signal N.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import os from "node:os";

const [socketPath, command, ...args] = process.argv.slice(2);
const marker = path.join(path.dirname(socketPath), "detached");
const RETRY_MS = 10;
const [HELLO, IPC, STDOUT, STDERR, EXIT, DETACH] = [0, 1, 2, 3, 4, 5];

let conn = null;
let child = null;
let exitCode = null;
const pending = [];
let input = Buffer.alloc(0);

function frame(type, payload) {
  const header = Buffer.alloc(5);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

function send(type, payload) {
  const bytes = frame(type, payload);
  if (conn) conn.write(bytes);
  else pending.push(bytes);
}

function onFrame(type, payload) {
  if (type === HELLO && !child) startTask(JSON.parse(payload.toString("utf8")).env);
  else if (type === IPC && child) child.stdio[3].write(payload);
  else if (type === DETACH) detach();
}

function startTask(env) {
  child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe", "pipe"] });
  child.stdout.on("data", (data) => send(STDOUT, data));
  child.stderr.on("data", (data) => send(STDERR, data));
  child.stdio[3].on("data", (data) => send(IPC, data));
  child.stdio[3].on("error", () => {});
  child.on("error", (err) => {
    process.stderr.write(`container-shim: cannot start ${command}: ${err.message}\n`);
    process.exit(127);
  });
  child.on("close", (code, signal) => {
    exitCode = signal ? 128 + (os.constants.signals[signal] ?? 9) : (code ?? 0);
    send(EXIT, Buffer.from(JSON.stringify({ code, signal, oomKills: oomKills() })));
    // The last output goes out before the container ends (the socket's close ends the shim).
    if (conn) conn.end();
    else process.exit(exitCode);
  });
}

/** Kernel OOM kills in this container's memory cgroup (v1: memory.oom_control, v2: memory.events), or null. */
function oomKills() {
  for (const file of ["/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"]) {
    try {
      const found = /^oom_kill (\d+)$/m.exec(fs.readFileSync(file, "utf8"));
      if (found) return Number(found[1]);
    } catch {}
  }
  return null;
}

function detach() {
  const socket = conn;
  if (!socket) return;
  conn = null;
  socket.once("close", () => {
    fs.writeFileSync(marker, "");
    setTimeout(connect, RETRY_MS);
  });
  socket.end();
}

function connect() {
  const socket = net.connect(socketPath);
  let connected = false;
  socket.once("connect", () => {
    connected = true;
    conn = socket;
    input = Buffer.alloc(0);
    try {
      fs.rmSync(marker, { force: true });
    } catch {}
    for (const bytes of pending.splice(0)) socket.write(bytes);
  });
  socket.on("data", (data) => {
    input = Buffer.concat([input, data]);
    while (input.length >= 5) {
      const length = input.readUInt32BE(1);
      if (input.length < 5 + length) break;
      const type = input.readUInt8(0);
      const payload = input.subarray(5, 5 + length);
      input = input.subarray(5 + length);
      onFrame(type, payload);
    }
  });
  socket.on("error", () => {});
  socket.once("close", () => {
    // The runner went away without a DETACH (it crashed or gave the task up): the task ends with it.
    if (conn === socket) process.exit(exitCode ?? 137);
    // Nobody listens (yet): try again. A detached socket's retry is detach()'s.
    if (!connected) setTimeout(connect, RETRY_MS);
  });
}

connect();
