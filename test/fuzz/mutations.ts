// Mutations of a valid JSON value: each is a small recipe (printable when a request fails) that
// `applyMutation` turns into the value, and `serializeBody` into the bytes sent.
import fc from "fast-check";

export type Path = Array<string | number>;

export type Mutation =
  | { kind: "wrong-type"; path: Path; value: unknown }
  | { kind: "missing"; path: Path }
  | { kind: "extra-field"; path: Path; key: string; value: unknown }
  | { kind: "huge-string"; path: Path; length: number }
  | { kind: "huge-array"; path: Path; length: number }
  | { kind: "deep-nesting"; path: Path; depth: number }
  | { kind: "odd-string"; path: Path; value: string }
  | { kind: "odd-number"; path: Path; value: number };

/** Characters and strings that have broken servers: NUL (PostgreSQL text refuses it), lone surrogates, … */
export const ODD_STRINGS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udfffy",
  "\uffff\ufffe",
  "\u202e\u0041",
  "😀".repeat(64),
  "__proto__",
  "constructor",
  "../../../etc/passwd",
  "%00",
  "%2F",
  "' OR '1'='1' --",
  "$1",
  "\r\n\r\nX-Injected: 1",
  "{{7*7}}",
  "null",
  "NaN",
  "-1",
  "9".repeat(400),
  "2026-02-30T25:61:61Z",
  "20261399.99999999999999999",
  "preview/",
  "preview/" + "a".repeat(101),
  "production\n",
];

/** Numbers at the edges of JS, JSON and PostgreSQL integer columns. */
export const ODD_NUMBERS = [-1, 0, -0, 0.5, 1.5, 2 ** 31 - 1, 2 ** 31, 2 ** 32, -(2 ** 31) - 1, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, 5e-324, Number.MAX_VALUE];

const KEYS_THAT_BITE = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "extra", "", "a.b", "$where"];

/** Every path in a JSON value, the root (`[]`) first. */
export function pathsOf(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (out.length > 200) return out;
  if (Array.isArray(value)) value.slice(0, 5).forEach((v, i) => pathsOf(v, [...prefix, i], out));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, k], out);
  return out;
}

function typeOf(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
}

const anyOtherValue = fc.oneof(
  fc.string({ maxLength: 10 }),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.constant([]),
  fc.constant({}),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }),
);

/** A mutation of `value` (usually a valid body): a recipe that names where it changes the value. */
export function mutationOf(value: unknown): fc.Arbitrary<Mutation> {
  const paths = pathsOf(value);
  const objectPaths = paths.filter((p) => typeOf(at(value, p)) === "object");
  const keyPaths = paths.filter((p) => p.length > 0);
  const path = fc.constantFrom(...paths);
  const arbitraries: Array<fc.WeightedArbitrary<Mutation>> = [
    { weight: 6, arbitrary: path.chain((p) => anyOtherValue.filter((v) => typeOf(v) !== typeOf(at(value, p))).map((v) => ({ kind: "wrong-type" as const, path: p, value: v }))) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("huge-string" as const), path, length: fc.constantFrom(70_000, 300_000, 1_100_000) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("huge-string" as const), path, length: fc.constantFrom(3 * 1024 * 1024 + 1, 4 * 1024 * 1024) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("huge-array" as const), path, length: fc.constantFrom(501, 1001, 20_000, 200_000) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("deep-nesting" as const), path, depth: fc.constantFrom(64, 1000, 10_000, 100_000) }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant("odd-string" as const), path, value: fc.constantFrom(...ODD_STRINGS) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("odd-number" as const), path, value: fc.constantFrom(...ODD_NUMBERS) }) },
  ];
  if (keyPaths.length) arbitraries.push({ weight: 5, arbitrary: fc.record({ kind: fc.constant("missing" as const), path: fc.constantFrom(...keyPaths) }) });
  if (objectPaths.length) {
    arbitraries.push({
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant("extra-field" as const), path: fc.constantFrom(...objectPaths), key: fc.oneof(fc.constantFrom(...KEYS_THAT_BITE), fc.string({ maxLength: 8 })), value: anyOtherValue }),
    });
  }
  return fc.oneof(...arbitraries);
}

function at(value: unknown, path: Path): unknown {
  return path.reduce<unknown>((v, k) => (v as Record<string | number, unknown> | undefined)?.[k], value);
}

const DEEP = "\u0001deep:";

/** The mutated value; deep nesting is a marker that `serializeBody` expands, so no JS recursion builds it. */
export function applyMutation(value: unknown, m: Mutation): unknown {
  const replacement = (): unknown => {
    switch (m.kind) {
      case "wrong-type":
      case "odd-string":
      case "odd-number":
        return m.value;
      case "huge-string":
        return "x".repeat(m.length);
      case "huge-array":
        return new Array(m.length).fill(0);
      case "deep-nesting":
        return `${DEEP}${m.depth}\u0001`;
      default:
        return undefined;
    }
  };
  if (m.kind === "extra-field") {
    return setAt(value, m.path, (obj) => {
      const copy = { ...(obj as object) };
      Object.defineProperty(copy, m.key, { value: m.value, enumerable: true, configurable: true, writable: true });
      return copy;
    });
  }
  if (m.kind === "missing") return setAt(value, m.path, () => undefined, true);
  return setAt(value, m.path, replacement);
}

function setAt(value: unknown, path: Path, change: (old: unknown) => unknown, remove = false): unknown {
  if (path.length === 0) return change(value);
  const [head, ...rest] = path;
  if (Array.isArray(value)) {
    const copy = [...value];
    if (remove && rest.length === 0) copy.splice(head as number, 1);
    else copy[head as number] = setAt(copy[head as number], rest, change, remove);
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  if (remove && rest.length === 0) delete copy[head as string];
  else copy[head as string] = setAt(copy[head as string], rest, change, remove);
  return copy;
}

/** JSON text of a (mutated) value, with deep-nesting markers expanded to `[[[…]]]`. */
export function serializeBody(value: unknown): string {
  const text = JSON.stringify(value) ?? "";
  if (!text.includes("\\u0001deep:")) return text;
  return text.replace(/"\\u0001deep:(\d+)\\u0001"/g, (_m, n: string) => "[".repeat(Number(n)) + "]".repeat(Number(n)));
}

/** The dotted field a validation error should name for a mutation (or a prefix of it). */
export function fieldOf(path: Path): string {
  return path.join(".");
}
