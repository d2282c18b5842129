import type { TaskToRunner } from "../../schemas/index.ts";
import { readLines } from "../line-reader.ts";
import { openTaskChannel } from "../task-channel.ts";
import type { TaskProcess } from "../workload/index.ts";
import { answerCall } from "./calls.ts";
import { finish } from "./finish.ts";
import type { Session } from "./session.ts";
import { contextOf } from "./start.ts";

/** Makes `process` the session's process: its output becomes the run's log, its fd 3 the session's channel, its exit the run's end. */
export function attach(session: Session, process: TaskProcess): void {
  const { shipper, silenced } = session;
  session.proc = process;
  const ipc = openTaskChannel(process.ipc, (message) => onMessage(session, message), (problem) => session.log.warn({ runId: session.runId }, problem));
  session.channel = ipc;
  session.stopReading = [
    readLines(process.stdout, (line) => silenced.has(process) || shipper.push({ ts: new Date().toISOString(), level: "info", message: line })),
    readLines(process.stderr, (line) => silenced.has(process) || shipper.push({ ts: new Date().toISOString(), level: "error", message: line })),
    () => ipc.detach(),
  ];
  void process.exited.then((exit) => {
    if (session.proc !== process || session.state.is("dumping") || silenced.has(process) || session.state.over) return;
    if (exit.reason) return void finish(session, { ok: false, error: exit.reason, crashed: true });
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
    void finish(session, { ok: false, error: { name: "TaskProcessCrashed", message: `the task process ${how} before the run finished` }, crashed: true });
  });
}

/** The process said `ready` (or was ready before it was attached: a spare, a kept process): the run goes to it. */
export function handToProcess(session: Session): void {
  if (session.claim.resume) return;
  session.startedAt.ready = Date.now();
  session.channel?.send({ type: "execute", ctx: contextOf(session.claim), payload: session.claim.payload });
  session.log.debug({ runId: session.runId, startedAt: { ...session.startedAt, executeSent: Date.now() } }, "run handed to its process");
}

function onMessage(session: Session, message: TaskToRunner): void {
  switch (message.type) {
    case "ready":
      handToProcess(session);
      return;
    case "log":
      session.shipper.push({ ts: message.ts, level: message.level, message: message.message, data: message.data });
      return;
    case "call":
      void answerCall(session, message.callId, message.call);
      return;
    case "completed":
      void finish(session, { ok: true, output: message.output });
      return;
    case "failed":
      void finish(session, { ok: false, error: message.error });
      return;
    case "checkpoint-ready":
      session.checkpointReady?.();
      return;
    default:
      return;
  }
}
