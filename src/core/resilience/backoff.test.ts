import { describe, expect, it } from "vitest";
import { fullJitterDelayMs, reconnectBackoffDefaults } from "./backoff.ts";

describe("full-jitter backoff", () => {
  it.each([
    [0, 0.5, 50],
    [1, 0.5, 100],
    [3, 0.999, 799],
    [10, 0.5, 5_000],
    [1_000, 0.5, 5_000],
    [4, 0, 0],
  ])("attempt %i with draw %f waits %i ms", (attempt, draw, expectedMs) => {
    expect(fullJitterDelayMs(reconnectBackoffDefaults, attempt, draw)).toBe(expectedMs);
  });
});
