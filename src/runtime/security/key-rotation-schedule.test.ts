import { describe, expect, it } from "vitest";
import { keyRotationIntervalMs } from "../../core/security/key-rotation.ts";
import { silentLogger } from "../../ports/logger.ts";
import { VirtualClock } from "../../sim/virtual-clock.ts";
import { startKeyRotationSchedule } from "./key-rotation-schedule.ts";

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;
const noEvents = { handleEvent: () => {} };

describe("key rotation schedule", () => {
  it("rotates at start when overdue and then every interval on a virtual clock", () => {
    const clock = new VirtualClock(100 * dayMs);
    let newestMs = 0;
    const rotatedAtMs: number[] = [];
    const cancel = startKeyRotationSchedule(keyRotationIntervalMs("weekly"), {
      clock,
      logger: silentLogger,
      newestKeyCreatedAtMs: () => newestMs,
      rotate: (nowMs) => {
        rotatedAtMs.push(nowMs);
        newestMs = nowMs;
      },
    });
    expect(rotatedAtMs).toEqual([100 * dayMs]);
    clock.runUntil(100 * dayMs + 22 * dayMs, noEvents);
    expect(rotatedAtMs).toEqual([100 * dayMs, 107 * dayMs, 114 * dayMs, 121 * dayMs]);
    cancel();
    clock.runUntil(200 * dayMs, noEvents);
    expect(rotatedAtMs).toHaveLength(4);
  });

  it("a failing rotation is retried at the next check, not thrown", () => {
    const clock = new VirtualClock(10 * dayMs);
    let attempts = 0;
    const cancel = startKeyRotationSchedule(dayMs, {
      clock,
      logger: silentLogger,
      newestKeyCreatedAtMs: () => 0,
      rotate: () => {
        attempts += 1;
        throw new Error("disk full");
      },
    });
    clock.runUntil(10 * dayMs + 12 * hourMs, noEvents);
    expect(attempts).toBe(3);
    cancel();
  });
});
