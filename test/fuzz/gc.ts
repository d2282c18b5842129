// A forced GC without starting node with --expose-gc (the flag can be set at run time; `gc` is then
// reachable from a fresh context).
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

let gc: (() => void) | undefined;

export function forceGc(): void {
  if (!gc) {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc") as () => void;
  }
  for (let i = 0; i < 3; i++) gc();
}

export interface MemoryFigures {
  heapUsedMiB: number;
  rssMiB: number;
}

/** Heap and RSS after a full collection. */
export function memoryAfterGc(): MemoryFigures {
  forceGc();
  const m = process.memoryUsage();
  return { heapUsedMiB: Math.round((m.heapUsed / 1048576) * 10) / 10, rssMiB: Math.round((m.rss / 1048576) * 10) / 10 };
}
