import type { Readable } from "node:stream";

/**
 * Calls `onLine` for each newline-terminated line of a stream (and the tail when it ends). Returns
 * a function that stops reading: its listeners come off, and what comes later stays in the stream.
 */
export function readLines(stream: Readable, onLine: (line: string) => void): () => void {
  let buffered = "";
  stream.setEncoding("utf8");
  const onData = (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
    }
  };
  const onEnd = () => {
    if (buffered) onLine(buffered);
    buffered = "";
  };
  const onError = () => {};
  stream.on("data", onData);
  stream.on("end", onEnd);
  stream.on("error", onError);
  return () => {
    stream.off("data", onData);
    stream.off("end", onEnd);
    stream.off("error", onError);
  };
}
