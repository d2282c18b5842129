// The fuzzer's own parts: the zod → fast-check converter accepts its own output for every schema in
// schemas/, and route discovery refuses a route it cannot derive input for.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import * as schemas from "../../schemas/index.ts";
import { discoverRoutes, RouteNotFuzzableError } from "./routes.ts";
import { arbitraryFor, UnsupportedSchemaError } from "./zod-arbitrary.ts";
import { applyMutation, mutationOf, serializeBody } from "./mutations.ts";

describe("zod → fast-check", () => {
  it("every schema in schemas/ yields values the schema accepts", () => {
    const checked: string[] = [];
    for (const [name, schema] of Object.entries(schemas)) {
      if (!(schema instanceof z.ZodType)) continue;
      const samples = fc.sample(arbitraryFor(schema), { numRuns: 100, seed: 42 });
      const refused = samples.filter((v) => !schema.safeParse(v).success);
      expect(refused.length, `${name}: ${JSON.stringify(refused[0])?.slice(0, 200)}`).toBe(0);
      checked.push(name);
    }
    expect(checked.length).toBeGreaterThan(50);
  });

  it("a schema kind it does not know is an error naming the kind and the field", () => {
    expect(() => arbitraryFor(z.object({ when: z.date() }))).toThrow(UnsupportedSchemaError);
    expect(() => arbitraryFor(z.object({ when: z.date() }))).toThrow(/"date" schema at when/);
  });

  it("deep-nesting mutations serialize without recursion", () => {
    const text = serializeBody(applyMutation({ a: [1] }, { kind: "deep-nesting", path: ["a"], depth: 100_000 }));
    expect(text.length).toBe('{"a":}'.length + 200_000);
    expect(fc.sample(mutationOf({ a: { b: "c" } }), { numRuns: 50, seed: 1 }).length).toBe(50);
  });
});

describe("route discovery", () => {
  const route = (over: object) => ({ methods: ["POST"], url: "/x/:id", auth: "env", schema: { params: z.object({ id: z.string() }) }, ...over });

  it("takes a route with zod schemas for its path parameters", () => {
    expect(discoverRoutes([route({})])[0]).toMatchObject({ url: "/x/:id", paramNames: ["id"], auth: "env" });
  });

  it("fails on a path parameter without a schema, a schema that is not zod, or a kind it cannot generate", () => {
    expect(() => discoverRoutes([route({ schema: {} })])).toThrow(/path parameter :id has no params schema/);
    expect(() => discoverRoutes([route({ schema: { params: { type: "object" } } })])).toThrow(RouteNotFuzzableError);
    expect(() => discoverRoutes([route({ url: "/y", schema: { body: z.object({ at: z.date() }) } })])).toThrow(/"date" schema/);
  });
});
