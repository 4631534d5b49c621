import { describe, expect, it } from "vitest";
import { keyRotationIntervalMs, KeyRotationPolicyError, rotationDue } from "./key-rotation.ts";

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;

describe("key rotation policy", () => {
  it.each([
    ["weekly", 7 * dayMs],
    ["monthly", 30 * dayMs],
    ["90d", 90 * dayMs],
    ["12h", 12 * hourMs],
    ["1h", hourMs],
  ])("%s is %d ms", (policy, intervalMs) => {
    expect(keyRotationIntervalMs(policy)).toBe(intervalMs);
  });

  it.each(["", "daily", "0d", "-1d", "1.5d", "30m", "100000d"])("refuses %j", (policy) => {
    expect(() => keyRotationIntervalMs(policy)).toThrow(KeyRotationPolicyError);
  });

  it("is due interval after the newest key was made", () => {
    expect(rotationDue(1_000, 7 * dayMs, 1_000 + 7 * dayMs - 1)).toEqual({
      dueAtMs: 1_000 + 7 * dayMs,
      due: false,
      inMs: 1,
    });
    expect(rotationDue(1_000, 7 * dayMs, 1_000 + 7 * dayMs).due).toBe(true);
  });
});
