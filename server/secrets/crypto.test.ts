import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DecryptError, decryptValue, encryptValue, generateKey, parseMasterKey, unwrapDataKey, wrapDataKey } from "./crypto.ts";

describe("secrets/crypto", () => {
  it("parses a 32-byte master key as base64, base64url or hex, and names the rule otherwise", () => {
    const raw = randomBytes(32);
    const fromB64 = parseMasterKey(raw.toString("base64"));
    expect(fromB64.key.equals(raw)).toBe(true);
    expect(parseMasterKey(raw.toString("base64url")).id).toBe(fromB64.id);
    expect(parseMasterKey(raw.toString("hex")).id).toBe(fromB64.id);
    expect(() => parseMasterKey("too-short")).toThrow(/32 random bytes written as base64 \(44 characters\) or hex \(64 characters\)/);
    expect(() => parseMasterKey(randomBytes(16).toString("hex"), "STASIS_ENCRYPTION_KEY_PREVIOUS")).toThrow(/^STASIS_ENCRYPTION_KEY_PREVIOUS/);
    expect(parseMasterKey(randomBytes(32).toString("hex")).id).not.toBe(fromB64.id);
  });

  it("wraps a data key for one project only", () => {
    const master = parseMasterKey(randomBytes(32).toString("hex"));
    const dataKey = generateKey();
    const wrapped = wrapDataKey(master, "p1", dataKey);
    expect(unwrapDataKey(master, "p1", wrapped).equals(dataKey)).toBe(true);
    expect(() => unwrapDataKey(master, "p2", wrapped)).toThrow(DecryptError);
    expect(() => unwrapDataKey(parseMasterKey(randomBytes(32).toString("hex")), "p1", wrapped)).toThrow(/GCM authentication/);
  });

  it("binds a value to its project, scope and name, uses a fresh IV each time, and detects a flipped byte", () => {
    const key = generateKey();
    const place = { projectId: "p1", scope: "production", name: "TOKEN" };
    const a = encryptValue(key, place, "hunter2-hunter2");
    const b = encryptValue(key, place, "hunter2-hunter2");
    expect(a.equals(b)).toBe(false);
    expect(decryptValue(key, place, a)).toBe("hunter2-hunter2");
    expect(() => decryptValue(key, { ...place, scope: "staging" }, a)).toThrow(DecryptError);
    expect(() => decryptValue(key, { ...place, name: "OTHER" }, a)).toThrow(DecryptError);
    const flipped = Buffer.from(a);
    flipped[flipped.length - 1] ^= 1;
    expect(() => decryptValue(key, place, flipped)).toThrow(DecryptError);
    expect(decryptValue(key, place, encryptValue(key, place, ""))).toBe("");
  });
});
