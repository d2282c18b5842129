import { readFile } from "node:fs/promises";
import { SourceMap } from "node:module";
import path from "node:path";

/** A deployment's bundle as the runner sees it: its app dir and its entry (`manifest.entry`). */
export interface BundleRef {
  appDir: string;
  entry: string;
}

/** Source maps parsed at once, at most (each is ~1–2 MB of JSON and more once decoded). */
const MAX_MAPS = 8;

/**
 * Rewrites stack frames that point into a deployment's bundle (`…/index.mjs:LINE:COL`) to the
 * source they came from, with the bundle's source map — in the runner, once per deployment.
 *
 * Task processes start without `--enable-source-maps`: Node parses the bundle's map when the
 * bundle loads, and for a task bundle (zod and the SDK included: ~1.6 MB of map) that was ~130 ms
 * of CPU in every task start, 35 % of it (bench/trigger-latency, "Sixth round"). Here it is paid
 * the first time a run of that deployment prints or throws a stack, by the runner, and kept.
 * A source is named as Node names it, resolved against the bundle's path in the frame.
 */
export function createStackMapper() {
  const maps = new Map<string, Promise<SourceMap | null>>();

  function mapOf(bundle: BundleRef): Promise<SourceMap | null> {
    const file = `${path.join(bundle.appDir, bundle.entry)}.map`;
    let map = maps.get(file);
    if (map) {
      maps.delete(file); // re-inserted below: most recently used last
    } else {
      // null for good: no map, or one that does not parse.
      map = readFile(file, "utf8")
        .then((text) => new SourceMap(JSON.parse(text)))
        .catch(() => null);
    }
    maps.set(file, map);
    while (maps.size > MAX_MAPS) maps.delete(maps.keys().next().value!);
    return map;
  }

  return {
    /** `text` with every frame into the bundle mapped to its source; unchanged where there is none to map (or no map). */
    async map(text: string, bundle: BundleRef): Promise<string> {
      const frames = framePattern(bundle.entry);
      if (!frames.test(text)) return text;
      const map = await mapOf(bundle);
      if (!map) return text;
      frames.lastIndex = 0;
      return text.replace(frames, (frame, url: string | undefined, bundlePath: string, line: string, column: string) => {
        const found = map.findEntry(Number(line) - 1, Number(column) - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number };
        if (!found.originalSource || found.originalLine === undefined || found.originalColumn === undefined) return frame;
        const source = path.posix.resolve(path.posix.dirname(bundlePath), found.originalSource.replace(/^file:\/\//, ""));
        return `${url ?? ""}${source}:${found.originalLine + 1}:${found.originalColumn + 1}`;
      });
    },
  };
}

export type StackMapper = ReturnType<typeof createStackMapper>;

/** `[file://]/some/dir/<entry>:LINE:COL`, the way V8 prints a frame's position. */
function framePattern(entry: string): RegExp {
  const escaped = entry.replace(/^\.\//, "").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(file://)?(/[^\\s():]*?/${escaped}):(\\d+):(\\d+)`, "g");
}
