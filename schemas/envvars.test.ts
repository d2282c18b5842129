import { describe, expect, it } from "vitest";
import { createRedactor, EnvVarName, SetEnvVarsRequest } from "./envvars.ts";

describe("createRedactor", () => {
  it("replaces values of 6+ characters with [redacted:NAME], longest first, in text and nested data", () => {
    const redact = createRedactor({ SHORT: "abc", TOKEN: "tok-123456", PREFIX: "tok-12", URL: "https://x.example/tok-123456" });
    expect(redact.text("a tok-123456 b abc")).toBe("a [redacted:TOKEN] b abc");
    expect(redact.text("go https://x.example/tok-123456 now")).toBe("go [redacted:URL] now");
    expect(redact.text("tok-12 alone")).toBe("[redacted:PREFIX] alone");
    expect(redact.deep({ list: ["tok-123456"], n: 1, nested: { v: "x tok-123456" } })).toEqual({ list: ["[redacted:TOKEN]"], n: 1, nested: { v: "x [redacted:TOKEN]" } });
    expect(createRedactor({ A: "12345" }).empty).toBe(true);
  });
});

describe("variable names", () => {
  it("accepts shell names and refuses others and STASIS_*", () => {
    expect(EnvVarName.safeParse("_OK_1").success).toBe(true);
    expect(EnvVarName.safeParse("1NO").success).toBe(false);
    expect(EnvVarName.safeParse("A-B").success).toBe(false);
    expect(EnvVarName.safeParse("stasis_api_key").success).toBe(false);
    const parsed = SetEnvVarsRequest.safeParse({ variables: { GOOD: "x", "BAD NAME": "y" } });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]!.message).toMatch(/"BAD NAME": a variable name matches/);
  });
});
