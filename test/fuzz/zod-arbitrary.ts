// zod 4 schema → fast-check arbitrary of values the schema accepts (zod-fast-check knows only zod 3).
// It covers the kinds `schemas/` uses; any other kind throws, naming the kind and where it is, so a
// new schema shape fails the fuzzer instead of being skipped.
import fc from "fast-check";
import type { z } from "zod";
import { EnvVarName, EnvVarsRecord, ImageRef, ProjectPath } from "../../schemas/index.ts";

const hex64 = fc.stringMatching(/^[a-f0-9]{64}$/);
const pathParts = fc.stringMatching(/^[a-z0-9]{1,10}(\/[a-z0-9]{1,10}){0,3}$/);
const envVarName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/).filter((name) => !name.toUpperCase().startsWith("STASIS_"));

/**
 * Schemas whose rule is code (a zod `refine`), not a shape this converter can read: their values
 * are made by hand, as the rule describes them.
 */
const REFINED = new Map<z.ZodType, fc.Arbitrary<unknown>>([
  [EnvVarName, envVarName],
  [ProjectPath, fc.constantFrom(".", "tasks", "packages/jobs", "apps/worker/tasks")],
  [EnvVarsRecord, fc.dictionary(envVarName, fc.string({ maxLength: 40 }), { maxKeys: 5 })],
  [
    ImageRef,
    fc.oneof(
      fc.tuple(fc.constantFrom("127.0.0.1:5000", "registry.example.com", "ghcr.io"), pathParts, hex64).map(([host, repo, digest]) => `${host}/${repo}@sha256:${digest}`),
      fc.tuple(pathParts, hex64).map(([dir, digest]) => `oci-layout:/${dir}@sha256:${digest}`),
    ),
  ],
]);

/** Values worth trying for a field of this name (real ids, leases, tokens): an AFL-style dictionary. */
export type Dictionary = Record<string, () => readonly unknown[]>;

export interface ArbitraryOptions {
  /** Field name → known values, mixed in with the generated ones. */
  dictionary?: Dictionary;
  /** Field name → the only arbitrary used for that field (e.g. keep `waitMs` short). */
  overrides?: Record<string, fc.Arbitrary<unknown>>;
  /** Recursion depth for lazy schemas and JSON values. */
  maxDepth?: number;
}

export class UnsupportedSchemaError extends Error {
  constructor(kind: string, where: string) {
    super(`the fuzzer cannot generate values for a zod "${kind}" schema at ${where || "(root)"}: teach test/fuzz/zod-arbitrary.ts this kind`);
    this.name = "UnsupportedSchemaError";
  }
}

type AnySchema = z.ZodType & { _zod: { def: Def } };
interface Def {
  type: string;
  [key: string]: unknown;
}
interface CheckDef {
  check: string;
  [key: string]: unknown;
}

function checksOf(def: Def): CheckDef[] {
  const checks = (def.checks as Array<{ _zod: { def: CheckDef } }> | undefined) ?? [];
  const own = def.check ? [def as unknown as CheckDef] : [];
  return [...own, ...checks.map((c) => c._zod.def)];
}

/** Any JSON value, bounded in size. */
export function jsonValue(maxDepth = 3): fc.Arbitrary<unknown> {
  return fc.jsonValue({ maxDepth, stringUnit: storableUnit }) as fc.Arbitrary<unknown>;
}

/**
 * One grapheme of any script, but no NUL: valid values should be storable, so they reach the code
 * behind validation; mutations (test/fuzz/mutations.ts) put NUL and lone surrogates back on purpose.
 */
const storableUnit = fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }).filter((c) => !c.includes("\u0000"));

function lengthBounds(checks: CheckDef[]): { min: number; max: number | undefined } {
  let min = 0;
  let max: number | undefined;
  for (const c of checks) {
    if (c.check === "min_length") min = Math.max(min, c.minimum as number);
    if (c.check === "max_length") max = Math.min(max ?? Infinity, c.maximum as number);
    if (c.check === "length_equals") min = max = c.length as number;
  }
  return { min, max };
}

function stringArbitrary(def: Def, where: string): fc.Arbitrary<string> {
  const checks = checksOf(def);
  const { min, max } = lengthBounds(checks);
  const fitsLength = (s: string) => s.length >= min && (max === undefined || s.length <= max);
  const format = checks.find((c) => c.check === "string_format");
  if (format) {
    switch (format.format) {
      case "uuid":
      case "guid":
        return fc.uuid();
      case "datetime":
        return fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((d) => d.toISOString());
      case "url":
        return fc.webUrl();
      case "email":
        return fc.emailAddress();
      default: {
        const pattern = format.pattern as RegExp | undefined;
        if (!pattern) throw new UnsupportedSchemaError(`string format ${String(format.format)}`, where);
        // stringMatching may pad around an unanchored pattern; keep what also fits the length checks.
        const matching = fc.stringMatching(pattern).filter(fitsLength);
        return max === undefined ? matching : matching.map((s) => s.slice(0, max)).filter((s) => fitsLength(s) && pattern.test(s));
      }
    }
  }
  return fc.string({ minLength: min, maxLength: Math.min(max ?? 40, Math.max(min, 40)), unit: storableUnit });
}

function numberArbitrary(def: Def): fc.Arbitrary<number> {
  const checks = checksOf(def);
  const isInt = checks.some((c) => c.check === "number_format" && /int/.test(String(c.format)));
  let min = isInt ? Number.MIN_SAFE_INTEGER : -1e12;
  let max = isInt ? Number.MAX_SAFE_INTEGER : 1e12;
  let minExclusive = false;
  let maxExclusive = false;
  for (const c of checks) {
    if (c.check === "greater_than" && (c.value as number) >= min) ((min = c.value as number), (minExclusive = !c.inclusive));
    if (c.check === "less_than" && (c.value as number) <= max) ((max = c.value as number), (maxExclusive = !c.inclusive));
  }
  if (isInt) {
    const lo = minExclusive ? Math.floor(min) + 1 : Math.ceil(min);
    const hi = maxExclusive ? Math.ceil(max) - 1 : Math.floor(max);
    // Small values are where the branches are; the edges are where the bugs are.
    return fc.oneof({ weight: 4, arbitrary: fc.integer({ min: Math.max(lo, Math.min(hi, -5)), max: Math.min(hi, Math.max(lo, 100)) }) }, fc.integer({ min: lo, max: hi }), fc.constantFrom(lo, hi));
  }
  return fc.double({ min, max, minExcluded: minExclusive, maxExcluded: maxExclusive, noNaN: true, noDefaultInfinity: true });
}

function sized<T>(checks: CheckDef[], fallbackMax: number, make: (c: { minLength: number; maxLength: number }) => fc.Arbitrary<T>) {
  const { min, max } = lengthBounds(checks);
  return make({ minLength: min, maxLength: Math.max(min, Math.min(max ?? fallbackMax, fallbackMax)) });
}

/** An arbitrary of values `schema` accepts (as JSON would carry them: defaults may be left out). */
export function arbitraryFor(schema: z.ZodType, options: ArbitraryOptions = {}): fc.Arbitrary<unknown> {
  const maxDepth = options.maxDepth ?? 3;

  function named(key: string, schemaArb: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
    const override = options.overrides?.[key];
    if (override) return override;
    const known = options.dictionary?.[key];
    if (!known) return schemaArb;
    const pick = fc.nat().map((i) => {
      const values = known();
      return values.length ? values[i % values.length] : undefined;
    });
    return fc.oneof({ weight: 1, arbitrary: schemaArb }, { weight: 2, arbitrary: pick.chain((v) => (v === undefined ? schemaArb : fc.constant(v))) });
  }

  function build(s: AnySchema, where: string, depth: number): fc.Arbitrary<unknown> {
    const refined = REFINED.get(s);
    if (refined) return refined;
    const def = s._zod.def;
    switch (def.type) {
      case "string":
        return stringArbitrary(def, where);
      case "number":
        return numberArbitrary(def);
      case "int":
        return numberArbitrary(def);
      case "boolean":
        return fc.boolean();
      case "null":
        return fc.constant(null);
      case "enum":
        return fc.constantFrom(...Object.values(def.entries as Record<string, string | number>));
      case "literal":
        return fc.constantFrom(...(def.values as unknown[]));
      case "unknown":
      case "any":
        return depth >= maxDepth ? fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)) : jsonValue(Math.max(1, maxDepth - depth));
      case "optional":
        return fc.option(build(def.innerType as AnySchema, where, depth), { nil: undefined, freq: 3 });
      case "nullable":
        return fc.option(build(def.innerType as AnySchema, where, depth), { nil: null, freq: 4 });
      case "default":
      case "prefault":
        return fc.option(build(def.innerType as AnySchema, where, depth), { nil: undefined, freq: 3 });
      case "pipe":
        return build(def.in as AnySchema, where, depth);
      case "lazy":
        // Past the depth, containers below come out empty, which ends the recursion.
        return build((def.getter as () => AnySchema)(), where, depth >= maxDepth ? maxDepth + 100 : depth + 1);
      case "array": {
        const element = depth >= maxDepth + 50 ? null : build(def.element as AnySchema, `${where}[]`, depth + 1);
        const checks = checksOf(def);
        if (!element) return fc.constant([]);
        return sized(checks, depth >= maxDepth ? 1 : 5, (c) => fc.array(element, c));
      }
      case "record": {
        const key = build(def.keyType as AnySchema, `${where}{key}`, depth + 1) as fc.Arbitrary<string>;
        if (depth >= maxDepth + 50) return fc.constant({});
        const value = build(def.valueType as AnySchema, `${where}{}`, depth + 1);
        return fc.dictionary(key, value, { maxKeys: depth >= maxDepth ? 1 : 4, noNullPrototype: true });
      }
      case "object": {
        const shape = def.shape as Record<string, AnySchema>;
        const fields: Record<string, fc.Arbitrary<unknown>> = {};
        for (const [key, value] of Object.entries(shape)) fields[key] = named(key, build(value, where ? `${where}.${key}` : key, depth));
        const record = fc.record(fields).map((o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)));
        // An object-level `.refine` (say, two fields that must differ) is code: keep the records it accepts.
        const refinedObject = (def.checks ?? []).some((check: { _zod?: { def?: { check?: string } } }) => check._zod?.def?.check === "custom");
        return refinedObject ? record.filter((o) => s.safeParse(o).success) : record;
      }
      case "union": {
        const options_ = (def.options as AnySchema[]).map((o) => build(o, where, depth));
        return fc.oneof(...options_);
      }
      case "intersection":
        return fc.tuple(build(def.left as AnySchema, where, depth), build(def.right as AnySchema, where, depth)).map(([a, b]) => ({ ...(a as object), ...(b as object) }));
      case "tuple":
        return fc.tuple(...(def.items as AnySchema[]).map((item, i) => build(item, `${where}[${i}]`, depth + 1)));
      default:
        throw new UnsupportedSchemaError(def.type, where);
    }
  }

  return build(schema as AnySchema, "", 0);
}
