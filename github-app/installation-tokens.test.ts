import { Octokit } from "@octokit/core";
import { describe, expect, it } from "vitest";
import { createInstallationTokens } from "./installation-tokens.ts";

describe("installation tokens", () => {
  it("reuses a token until five minutes before it expires, then mints a new one", async () => {
    let now = Date.parse("2025-01-01T00:00:00Z");
    const minted: number[] = [];
    const tokens = createInstallationTokens({
      OctokitClass: Octokit,
      now: () => now,
      async mint(id) {
        minted.push(id);
        return { token: `t${minted.length}`, expiresAt: new Date(now + 60 * 60_000) };
      },
    });
    expect(await Promise.all([tokens.token(1), tokens.token(1)])).toEqual(["t1", "t1"]);
    now += 54 * 60_000;
    expect(await tokens.token(1)).toBe("t1");
    now += 2 * 60_000;
    expect(await tokens.token(1)).toBe("t2");
    expect(await tokens.token(2)).toBe("t3");
    expect(minted).toEqual([1, 1, 2]);
  });

  it("a failed mint is not cached", async () => {
    let fail = true;
    const tokens = createInstallationTokens({
      OctokitClass: Octokit,
      async mint() {
        if (fail) throw new Error("HTTP 500");
        return { token: "ok", expiresAt: new Date(Date.now() + 3600_000) };
      },
    });
    await expect(tokens.token(1)).rejects.toThrow("HTTP 500");
    fail = false;
    expect(await tokens.token(1)).toBe("ok");
  });
});
