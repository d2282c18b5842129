import { MAX_JSON_DEPTH } from "../../schemas/index.ts";

export interface UnstorableInput {
  path: Array<string | number>;
  message: string;
}

// NUL, which PostgreSQL text and jsonb cannot hold, and UTF-16 surrogates that pair with nothing,
// which are not Unicode (jsonb refuses `\ud800`; text would silently get U+FFFD).
const BAD_CHARACTER = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function badString(value: string): string | null {
  const match = BAD_CHARACTER.exec(value);
  if (!match) return null;
  return match[0] === "\u0000" ? "contains a NUL character (\\u0000), which cannot be stored" : "contains an unpaired UTF-16 surrogate, which is not valid Unicode";
}

/**
 * The first place in parsed input (body, params, query) that PostgreSQL could not store or that is
 * nested deeper than MAX_JSON_DEPTH, or null. Walks with its own stack, so no input depth overflows it.
 */
export function findUnstorableInput(input: unknown): UnstorableInput | null {
  const stack: Array<{ value: unknown; path: Array<string | number> }> = [{ value: input, path: [] }];
  while (stack.length) {
    const { value, path } = stack.pop()!;
    if (typeof value === "string") {
      const problem = badString(value);
      if (problem) return { path, message: `the string ${problem}` };
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    if (path.length >= MAX_JSON_DEPTH) return { path, message: `nested deeper than ${MAX_JSON_DEPTH} levels` };
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: [...path, i] });
      continue;
    }
    const entries = Object.entries(value);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, child] = entries[i];
      const problem = badString(key);
      if (problem) return { path: [...path, key], message: `the key ${problem}` };
      stack.push({ value: child, path: [...path, key] });
    }
  }
  return null;
}
