import { describe, expect, it } from "vitest";
import { calendarTimeFromMs } from "./calendar.ts";
import { applyRetention, isEmptyPolicy } from "./retention.ts";
import type { RetentionCandidate, RetentionPolicy } from "./retention.ts";

const hourMs = 3_600_000;
const dayMs = 24 * hourMs;
const start = Date.UTC(2026, 0, 1, 12); // Thursday 2026-01-01 12:00 UTC

function snapshotsEvery(
  intervalMs: number,
  count: number,
  hostname = "node-1",
): RetentionCandidate[] {
  return Array.from({ length: count }, (_, index) => ({
    id: `${hostname}-${String(index).padStart(4, "0")}`,
    timeMs: start + index * intervalMs,
    hostname,
    paths: ["/data"],
  }));
}

function kept(candidates: RetentionCandidate[], policy: RetentionPolicy): string[] {
  return applyRetention(candidates, policy)
    .filter((decision) => decision.keep)
    .map((decision) => decision.id)
    .sort();
}

describe("calendar", () => {
  it.each([
    [
      Date.UTC(1970, 0, 1),
      { year: 1970, month: 1, day: 1, hour: 0, isoWeekYear: 1970, isoWeek: 1 },
    ],
    [
      Date.UTC(2024, 1, 29, 23),
      { year: 2024, month: 2, day: 29, hour: 23, isoWeekYear: 2024, isoWeek: 9 },
    ],
    [
      Date.UTC(2026, 0, 1, 12),
      { year: 2026, month: 1, day: 1, hour: 12, isoWeekYear: 2026, isoWeek: 1 },
    ],
    [
      Date.UTC(2027, 0, 1),
      { year: 2027, month: 1, day: 1, hour: 0, isoWeekYear: 2026, isoWeek: 53 },
    ],
    [
      Date.UTC(2024, 11, 30),
      { year: 2024, month: 12, day: 30, hour: 0, isoWeekYear: 2025, isoWeek: 1 },
    ],
    [
      Date.UTC(1969, 11, 31, 5),
      { year: 1969, month: 12, day: 31, hour: 5, isoWeekYear: 1970, isoWeek: 1 },
    ],
  ])("%d ms is %o", (epochMs, expected) => {
    expect(calendarTimeFromMs(epochMs)).toEqual(expected);
  });
});

describe("retention", () => {
  const hourly = snapshotsEvery(hourMs, 72);

  it("keeps the last n", () => {
    expect(kept(hourly, { keepLast: 3 })).toEqual(["node-1-0069", "node-1-0070", "node-1-0071"]);
  });

  it("keeps the newest snapshot of each of the last n days", () => {
    // 72 hourly snapshots from 12:00 on day 1 span four calendar days; the newest of the last two.
    expect(kept(hourly, { keepDaily: 2 })).toEqual(["node-1-0059", "node-1-0071"]);
  });

  it("keeps hourly, weekly, monthly and yearly buckets", () => {
    expect(kept(hourly, { keepHourly: 5 })).toHaveLength(5);
    const daily = snapshotsEvery(dayMs, 400);
    expect(kept(daily, { keepWeekly: 4 })).toHaveLength(4);
    expect(kept(daily, { keepMonthly: 3 })).toEqual(["node-1-0364", "node-1-0395", "node-1-0399"]);
    expect(kept(daily, { keepYearly: 5 })).toEqual(["node-1-0364", "node-1-0399"]);
  });

  it("keeps everything within a duration of the newest snapshot", () => {
    expect(kept(hourly, { keepWithinMs: 2 * hourMs })).toEqual([
      "node-1-0069",
      "node-1-0070",
      "node-1-0071",
    ]);
  });

  it("combines rules as a union and reports the reasons", () => {
    const decisions = applyRetention(hourly, { keepLast: 1, keepDaily: 1 });
    expect(decisions.find((decision) => decision.id === "node-1-0071")?.reasons).toEqual([
      "last",
      "daily",
    ]);
    expect(decisions.filter((decision) => decision.keep)).toHaveLength(1);
  });

  it("applies the policy per host and path set", () => {
    const mixed = [...snapshotsEvery(hourMs, 5, "node-1"), ...snapshotsEvery(hourMs, 5, "node-2")];
    expect(kept(mixed, { keepLast: 1 })).toEqual(["node-1-0004", "node-2-0004"]);
  });

  it("recognises an empty policy", () => {
    expect(isEmptyPolicy({})).toBe(true);
    expect(isEmptyPolicy({ keepLast: 1 })).toBe(false);
  });
});
